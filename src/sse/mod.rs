//! The SSE protocol: what an event is, its wire bytes, a subscribe request and the response head.
//!
//! Nothing here does IO: `broadcast` writes these bytes, `conn` reads the requests.

pub mod event;
pub mod head;
pub mod subscribe;
pub mod topic;
