//! Webhooks: session and user events in Clerk's format, signed the Standard Webhooks way,
//! delivered at least once, in order per session, with retries over hours.
//!
//! An event is recorded in the same commit as the change it reports ([`crate::store::Write::Event`]),
//! so a change that lands has exactly one event, and a race lost or retried has none. From
//! there:
//! - **On AWS** the event is an item of the table; DynamoDB Streams hands it to the
//!   `webhooks` function, which queues one message per subscribed endpoint on an SQS FIFO
//!   queue (message group: endpoint and session, so order holds per session), then
//!   delivers from the queue, retrying on the [`RetrySchedule`] by hiding a failed message
//!   until its next attempt; what still fails goes to the dead-letter queue.
//! - **On the embedded store** the event goes to an outbox table; a worker of the serving
//!   process ([`outbox::run`]) fans it out and delivers it with the same [`Sender`], on the
//!   same schedule, one delivery at a time per endpoint and session; a slow endpoint
//!   delays only its own deliveries.

pub mod address;
mod deliver;
mod endpoint;
mod event;
pub mod outbox;
mod schedule;
pub mod signing;

pub use deliver::Sender;
pub use endpoint::{parse_url, WebhookEndpoint, MAX_ENDPOINTS, PREVIOUS_SECRET_GRACE_MS};
pub use event::{Event, EventContext, EventType, RequestOrigin};
pub use schedule::RetrySchedule;
