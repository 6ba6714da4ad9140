//! The end-to-end runs against real endpoints, and what other tests share of them: creating a
//! plan's resources on moto ([`aws::provision`]) as Terraform would.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an end-to-end run reports what it checked"
)]

pub mod aws;
pub mod gcp;
pub mod server;
