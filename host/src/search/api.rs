//! The search core's request and answer types: the WIT `search` records,
//! defined once in `logai-records` for the host and the components (the
//! plugin runtime converts the generated bindings in `plugins/bindings.rs`).
//! They are serde types, so the coordination cache stores answers as JSON.

pub use logai_records::search::{
    ContextLine, FollowResponse, OverflowPage, OverflowRef, SearchError, SearchErrorKind, SearchMatch, SearchRequest, SearchResponse,
    ServiceInfo,
};
