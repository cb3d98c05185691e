//! One module per resource, one async fn per endpoint: `(state, request) -> response`.
//! A handler parses the request, calls the application layer (`crate::app`) or the
//! store, and renders the answer. Neither API imports the other.

pub mod bapi;
pub mod fapi;
