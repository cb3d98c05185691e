//! Transport-level concerns: request parsing with param-named errors, client-token
//! extraction, CORS and origin checks, JSON answers and cookies.

pub mod activity;
pub mod auth;
pub mod cors;
pub mod request;
pub mod response;

pub use request::{ClientAddr, Form, PathParams, Request, RequestExt, RequestId};
pub use response::Response;
