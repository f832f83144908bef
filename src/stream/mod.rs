//! The streaming core: how one reply is produced and how every client that
//! follows the chat receives it, exactly once, wherever it reconnects.
//!
//! The story, in order:
//!
//! 1. **Send** ([`generation::start_reply`]): admission and limits, the
//!    chat's lock, the stored rows, the prompt. `Started` is sent only once
//!    the database has the reply's row.
//! 2. **The reply task** ([`generation`]): pulls the provider's stream into
//!    the reply's [`registry::Generation`], then stores the outcome. It owns
//!    the reply, not the RPC: a sender who leaves stops watching, never
//!    generating.
//! 3. **The registry** ([`registry`]): per chat, the newest reply, its
//!    watchers and the lock; per stream, the reply's text so far. It is the
//!    in-memory state of this process.
//! 4. **Sharing** ([`shared`]): what replicas must agree on — the chat's
//!    lock, the reply's text for watchers on other replicas, cancelling,
//!    watcher counts, send limits. [`shared::Sharing::Single`] is one
//!    process (the default: the registry alone is the truth);
//!    [`shared::Sharing::Redis`] shares it through Redis ([`redis`]), with
//!    leases and a fencing epoch kept in the database.
//! 5. **Following** ([`follower`], [`watching`]): a watcher keeps a byte
//!    offset into the reply's text and sends what lies past it; joining,
//!    resuming and following from another replica are the same code with a
//!    different starting offset and source.
//! 6. **Backlog** ([`backlog`]): replies a subscriber missed while away, read
//!    back from the database in order.
//! 7. **Checkpoint** ([`checkpoint`]): the text of running replies saved every
//!    interval, so a crash loses almost nothing.

pub mod backlog;
pub mod checkpoint;
pub mod follower;
pub mod generation;
mod quiet;
pub mod redis;
pub mod registry;
pub mod shared;
pub mod watching;
