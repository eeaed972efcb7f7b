//! In-module tests against a real redis-server (skipped with a message when
//! `redis-server` is not installed).
