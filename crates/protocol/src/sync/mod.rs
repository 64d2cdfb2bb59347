//! `POST /api/sync` and `GET /api/sync/initial`: request parsing with
//! per-operation errors, acknowledgements, and the record shape of responses.

mod request;
mod response;
mod wire;

pub use request::*;
pub use response::*;
pub use wire::*;
