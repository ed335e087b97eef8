//! Black-box tests of the local API over HTTP, and of the functions as Lambda calls them.

mod auth;
mod bookmarks;
mod cors;
mod deletes;
mod faults;
mod hostile;
mod inbox;
mod invites;
mod lambda_events;
mod live;
mod media;
mod members;
mod messages;
mod pages;
mod push;
mod reactions;
mod read_markers;
mod realtime;
mod rebuild;
mod robustness;
mod rooms;
mod rooms_membership;
mod schedule;
mod seed_examples;
mod template;
mod threads;
