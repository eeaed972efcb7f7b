//! The plain records that cross the WIT boundary (`plugins/sdk/wit/plugin.wit`),
//! defined once for both sides: the host (wasmtime) and the components
//! (wit-bindgen) use these types, and each side converts its generated
//! bindings with one macro call per WIT interface:
//!
//! ```ignore
//! logai_records::wit_search!(bindings::logai::plugin::search);
//! logai_records::wit_aggregate!(bindings::logai::plugin::aggregate);
//! logai_records::wit_metrics!(bindings::logai::plugin::metrics);
//! logai_records::wit_telemetry!(bindings::logai::plugin::telemetry_types);
//! ```
//!
//! Each record is written once, in [`record!`] (a struct) or [`choice!`]
//! (an enum of unit variants); the same field list generates the struct and
//! the conversions, `From` both ways between it and the generated type of
//! the same name. A field added here and in the WIT is carried by both
//! sides; a field in one and not the other fails to compile.
//!
//! Labels are `(name, value)` pairs here (the host stores them so); the WIT
//! `label` record converts to and from a pair.

#![warn(missing_docs)]

pub mod aggregate;
pub mod metrics;
pub mod names;
pub mod search;
pub mod telemetry;

/// A conversion between a record and its WIT-generated twin, field by
/// field: identity for scalars and strings, element-wise for lists and
/// options, and the generated impls for records.
pub trait Cross<T> {
    /// Convert.
    fn cross(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {
        $(impl Cross<$t> for $t {
            #[inline]
            fn cross(self) -> $t {
                self
            }
        })*
    };
}
same!(String, bool, u32, u64, i64, f64);

impl<A: Cross<B>, B> Cross<Vec<B>> for Vec<A> {
    fn cross(self) -> Vec<B> {
        self.into_iter().map(Cross::cross).collect()
    }
}

impl<A: Cross<B>, B> Cross<Option<B>> for Option<A> {
    fn cross(self) -> Option<B> {
        self.map(Cross::cross)
    }
}

/// Defines a record struct (`pub` fields, attributes kept) and the hidden
/// macro `$conv!(path::to::wit::module)` that converts it to and from the
/// WIT-generated struct `$wit` of that module, field by field.
macro_rules! record {
    ($d:tt $conv:ident: $module:ident = $wit:ident;
     $(#[$m:meta])*
     pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)? }
    ) => {
        $(#[$m])*
        pub struct $name { $( $(#[$fm])* pub $f: $t, )* }

        #[doc(hidden)]
        #[macro_export]
        macro_rules! $conv {
            ($d($d p:ident)::+) => {
                impl $crate::Cross<$d($d p)::+::$wit> for $crate::$module::$name {
                    fn cross(self) -> $d($d p)::+::$wit {
                        $d($d p)::+::$wit { $( $f: $crate::Cross::cross(self.$f), )* }
                    }
                }
                impl $crate::Cross<$crate::$module::$name> for $d($d p)::+::$wit {
                    fn cross(self) -> $crate::$module::$name {
                        $crate::$module::$name { $( $f: $crate::Cross::cross(self.$f), )* }
                    }
                }
                impl ::core::convert::From<$crate::$module::$name> for $d($d p)::+::$wit {
                    fn from(r: $crate::$module::$name) -> Self {
                        $crate::Cross::cross(r)
                    }
                }
                impl ::core::convert::From<$d($d p)::+::$wit> for $crate::$module::$name {
                    fn from(w: $d($d p)::+::$wit) -> Self {
                        $crate::Cross::cross(w)
                    }
                }
            };
        }
    };
}

/// Defines an enum of unit variants and its hidden conversion macro, like
/// [`record!`] (variants match by name).
macro_rules! choice {
    ($d:tt $conv:ident: $module:ident = $wit:ident;
     $(#[$m:meta])*
     pub enum $name:ident { $( $(#[$vm:meta])* $v:ident ),* $(,)? }
    ) => {
        $(#[$m])*
        pub enum $name { $( $(#[$vm])* $v, )* }

        #[doc(hidden)]
        #[macro_export]
        macro_rules! $conv {
            ($d($d p:ident)::+) => {
                impl $crate::Cross<$d($d p)::+::$wit> for $crate::$module::$name {
                    fn cross(self) -> $d($d p)::+::$wit {
                        match self { $( $crate::$module::$name::$v => $d($d p)::+::$wit::$v, )* }
                    }
                }
                impl $crate::Cross<$crate::$module::$name> for $d($d p)::+::$wit {
                    fn cross(self) -> $crate::$module::$name {
                        match self { $( $d($d p)::+::$wit::$v => $crate::$module::$name::$v, )* }
                    }
                }
                impl ::core::convert::From<$crate::$module::$name> for $d($d p)::+::$wit {
                    fn from(r: $crate::$module::$name) -> Self {
                        $crate::Cross::cross(r)
                    }
                }
                impl ::core::convert::From<$d($d p)::+::$wit> for $crate::$module::$name {
                    fn from(w: $d($d p)::+::$wit) -> Self {
                        $crate::Cross::cross(w)
                    }
                }
            };
        }
    };
}

pub(crate) use {choice, record};

/// The conversions for WIT interface `search`, given the path of its
/// generated module (e.g. `bindings::logai::plugin::search`).
#[macro_export]
macro_rules! wit_search {
    ($($p:ident)::+) => {
        $crate::__search_request!($($p)::+);
        $crate::__context_line!($($p)::+);
        $crate::__search_match!($($p)::+);
        $crate::__overflow_ref!($($p)::+);
        $crate::__search_response!($($p)::+);
        $crate::__service_info!($($p)::+);
        $crate::__overflow_page!($($p)::+);
        $crate::__follow_response!($($p)::+);
        $crate::__search_error_kind!($($p)::+);
        $crate::__search_error!($($p)::+);
    };
}

/// The conversions for WIT interface `aggregate`, given the path of its
/// generated module (its `search-request` and `search-error` are the search
/// interface's: invoke [`wit_search!`] for that module too).
#[macro_export]
macro_rules! wit_aggregate {
    ($($p:ident)::+) => {
        $crate::__aggregate_request!($($p)::+);
        $crate::__time_bucket!($($p)::+);
        $crate::__level_count!($($p)::+);
        $crate::__pattern_stat!($($p)::+);
        $crate::__value_count!($($p)::+);
        $crate::__facet!($($p)::+);
        $crate::__group_series!($($p)::+);
        $crate::__aggregate_response!($($p)::+);
    };
}

/// The conversions for WIT interface `metrics` (and its `label`, as a
/// `(name, value)` pair), given the path of its generated module.
#[macro_export]
macro_rules! wit_metrics {
    ($($p:ident)::+) => {
        impl $crate::Cross<$($p)::+::Label> for (::std::string::String, ::std::string::String) {
            fn cross(self) -> $($p)::+::Label {
                $($p)::+::Label { name: self.0, value: self.1 }
            }
        }
        impl $crate::Cross<(::std::string::String, ::std::string::String)> for $($p)::+::Label {
            fn cross(self) -> (::std::string::String, ::std::string::String) {
                (self.name, self.value)
            }
        }
        $crate::__counter!($($p)::+);
        $crate::__gauge!($($p)::+);
        $crate::__histogram!($($p)::+);
        $crate::__snapshot!($($p)::+);
    };
}

/// The conversions for WIT interface `telemetry-types`, given the path of
/// its generated module (its `label` is the metrics interface's: invoke
/// [`wit_metrics!`] for that module too).
#[macro_export]
macro_rules! wit_telemetry {
    ($($p:ident)::+) => {
        $crate::__event_kind!($($p)::+);
        $crate::__metric_kind!($($p)::+);
        $crate::__metric_point!($($p)::+);
        $crate::__breadcrumb!($($p)::+);
        $crate::__event!($($p)::+);
    };
}
