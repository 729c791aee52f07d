//! Remote targets: the same sandbox on every node, reached over OpenSSH. The controller keeps
//! the journal and resolves grants; `cutover agent --stdio` on the target's host runs the
//! steps with the same capability code as a local run ([`agent`]), over SSH sessions
//! carrying the [`proto`] messages ([`client`]); [`transport`] sends each step to its host.

pub mod agent;
pub mod client;
pub mod install;
pub mod proto;
pub mod route;
pub mod transport;
