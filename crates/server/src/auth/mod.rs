//! Shared authentication and grants (layer 3): who a credential stands for, and what a subject
//! is granted on a registry. The planes call these; none of them is a plane.
//!
//! - `credentials`: registry credentials (Basic with a service principal, a directory user, the
//!   admin user or the null GUID with a refresh token; Bearer access tokens), with the cache of
//!   verified credentials.
//! - `grant`: the Docker actions the decision engine grants a subject on a registry — the one
//!   place that decides what goes into a registry token and what a Basic credential may do.
//! - `management`: bearer directory tokens of management (ARM) and Graph calls.
//!
//! Refusals: a refused credential is logged with its precise reason (`reason = …`, at warn) and
//! answered with the door's one generic answer, whatever the reason (ARM
//! `InvalidAuthenticationToken`, ACR `UNAUTHORIZED` with the `WWW-Authenticate` challenge,
//! Entra `invalid_grant`), so a response is no oracle for forged tokens. Entra's sign-in errors
//! for a wrong client secret or password keep Entra's codes. `tests/identity_negative.rs`
//! checks every door.

pub mod credentials;
pub mod grant;
pub mod management;
