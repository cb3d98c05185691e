//! The DynamoDB store: one table, designed in `docs/dynamodb.md`.
//!
//! Every record is one item holding the record as JSON (`data`) and its `version`; a
//! write's expectation becomes a condition on `version` (or on the item not existing), and
//! a commit of several writes is one `TransactWriteItems`. Reads are strongly consistent.

pub mod calls;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use self::calls::CallCounter;
use self::table::{GSI1, GSI1_PK, GSI1_SK, PK, SK, TTL};
use super::{Expect, KeyringRecord, PublicKeysRecord, SessionFilter, Store, StoreError, Write};
use crate::clock::Millis;
use crate::domain::{
    Client as ClientRecord, ClientState, Identifier, JwtTemplate, Session, SessionStatus,
    SignInToken, User,
};

type Item = HashMap<String, AttributeValue>;

/// How long the confirming send of a write whose answer never came may take (see
/// `DynamoDbStore::run`): with the SDK's 5 s before it, a request stays within a Lambda
/// function's 10 s time-out.
const CONFIRM_WITHIN: Duration = Duration::from_secs(2);

/// How long an expired item is kept before DynamoDB's TTL may delete it, in seconds.
/// Reads never rely on the deletion: expiry is decided by the domain from the record.
const RETENTION_SECS: i64 = 24 * 3600;

pub struct DynamoDbStore {
    client: Client,
    table: String,
    calls: CallCounter,
}

impl DynamoDbStore {
    /// A store on `table`, with region, credentials and endpoint from the standard AWS
    /// environment (`AWS_ENDPOINT_URL_DYNAMODB` points it at a local server). Throttling
    /// and unavailability are retried by the SDK's standard retry mode, within a bounded
    /// time; past that a call fails as [`StoreError::Unavailable`].
    pub async fn from_env(table: String) -> Self {
        Self::new(table, None).await
    }

    /// Like [`DynamoDbStore::from_env`], with an explicit endpoint (tests, local servers).
    pub async fn new(table: String, endpoint: Option<String>) -> Self {
        Self::with_interceptor(table, endpoint, None).await
    }

    /// Like [`DynamoDbStore::new`], with one more SDK interceptor (the tests' fault
    /// injection: answers lost after DynamoDB applied the call).
    pub async fn with_interceptor(
        table: String,
        endpoint: Option<String>,
        extra: Option<aws_smithy_runtime_api::client::interceptors::SharedInterceptor>,
    ) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(5))
                    .build(),
            )
            .load()
            .await;
        let calls = CallCounter::default();
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(calls.clone());
        if let Some(extra) = extra {
            config.push_interceptor(extra);
        }
        let config = config.build();
        Self {
            client: Client::from_conf(config),
            table,
            calls,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Creates the table unless it exists (local endpoints and tests).
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        table::ensure_table(&self.client, &self.table).await
    }

    /// The operations made so far, with their request units, and a fresh count.
    pub fn take_calls(&self) -> calls::Calls {
        self.calls.take()
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([
            (PK.to_string(), AttributeValue::S(pk)),
            (SK.to_string(), AttributeValue::S(sk.to_string())),
        ])
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    /// Every item of a query, following pages.
    async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: Vec<(&str, String)>,
        newest_first: bool,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_first(index, key_condition, values, newest_first, None)
            .await
    }

    /// The first `limit` items of a query (all of them without one), following pages.
    async fn query_first(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: Vec<(&str, String)>,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let left = limit.map(|l| l.saturating_sub(items.len()));
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .scan_index_forward(!newest_first)
                .set_limit(left.map(|l| l.clamp(1, i32::MAX as usize) as i32))
                .set_exclusive_start_key(start.take());
            for (name, value) in &values {
                q = q.expression_attribute_values(*name, AttributeValue::S(value.clone()));
            }
            // DynamoDB refuses names the expression does not use.
            for (alias, attribute) in [("#pk", PK), ("#sk", SK), ("#gpk", GSI1_PK)] {
                if key_condition.contains(alias) {
                    q = q.expression_attribute_names(alias, attribute);
                }
            }
            q = match index {
                Some(index) => q.index_name(index),
                None => q.consistent_read(true),
            };
            let out = q.send().await.map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            if limit.is_some_and(|l| items.len() >= l) {
                return Ok(items);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Writes the identifier item of every email address and username of the users stored
    /// before identifiers existed (an operator's one-off, `local-api index-identifiers`:
    /// it scans the table, so never on a request). Oldest user first: of two users sharing
    /// an address, the older keeps it, and the other is counted as a conflict. Answers
    /// (items written, identifiers another user holds). Safe to run again.
    pub async fn index_identifiers(&self) -> Result<(usize, usize), StoreError> {
        let mut users: Vec<User> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#pk, :user) AND #sk = :user_sk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":user", s("USER#"))
                .expression_attribute_values(":user_sk", s("USER"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                users.push(parse(&item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        users.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let (mut written, mut conflicts) = (0, 0);
        for user in &users {
            for key in user.identifier_keys() {
                match self.get_identifier(&key).await? {
                    Some(held) if held.user_id == user.id => {}
                    Some(_) => conflicts += 1,
                    None => {
                        let claim = Write::Identifier(Identifier {
                            key,
                            user_id: user.id.clone(),
                        });
                        match self.commit(vec![claim]).await {
                            Ok(()) => written += 1,
                            // Taken meanwhile by a sign-up: that user keeps it.
                            Err(StoreError::Conflict) => conflicts += 1,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok((written, conflicts))
    }

    async fn scan_sessions(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#sk, :session)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":session", AttributeValue::S("SESSION#".into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

// ----- items -----

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn record_item<T: Serialize>(
    pk: String,
    sk: String,
    record: &T,
    version: u64,
    ttl_ms: Option<i64>,
) -> Result<Item, StoreError> {
    let data = serde_json::to_string(record).map_err(|e| StoreError::Fault(e.to_string()))?;
    let mut item = HashMap::from([
        (PK.to_string(), s(pk)),
        (SK.to_string(), s(sk)),
        ("data".to_string(), s(data)),
        ("version".to_string(), n(version as i64)),
    ]);
    if let Some(ms) = ttl_ms {
        item.insert(TTL.to_string(), n(ms / 1000 + RETENTION_SECS));
    }
    Ok(item)
}

fn parse<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    match item.get("data") {
        Some(AttributeValue::S(data)) => serde_json::from_str(data)
            .map_err(|e| StoreError::Fault(format!("unreadable item: {e}"))),
        _ => Err(StoreError::Fault("item without data".into())),
    }
}

fn session_sk(id: &str) -> String {
    format!("SESSION#{id}")
}

// A session's mutable fields, and the client's last active session, are attributes of
// their own beside `data`: a write can then change one field under a condition on
// another, so racing requests on a session do not conflict. When an attribute is present it
// wins over `data`; items written before these attributes existed read from `data` alone.
const STATUS: &str = "status";
/// The id of the last status write, so that a retried write recognises itself.
const STATUS_WRITE: &str = "status_write";
const LAST_ACTIVE_AT: &str = "last_active_at";
const ABANDON_AT: &str = "abandon_at";
const UPDATED_AT: &str = "updated_at";
const LATEST_ACTIVITY: &str = "latest_activity";
const LAST_ACTIVE_SESSION_ID: &str = "last_active_session_id";
/// The id of the commit that put an item whole, so that a retried put recognises itself.
const WRITE_ID: &str = "write_id";
/// Until when a spent one-time credential's item is kept (milliseconds).
const EXPIRES_AT: &str = "expires_at";
/// The key prefix of spent one-time credentials (`Write::UseOnce`).
const USED_ONCE_PK_PREFIX: &str = "USED_ONCE#";

fn number(item: &Item, name: &str) -> Option<Millis> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn parse_session(item: &Item) -> Result<Session, StoreError> {
    let mut session: Session = parse(item)?;
    if let Some(raw) = string(item, STATUS) {
        session.status = SessionStatus::parse(raw)
            .ok_or_else(|| StoreError::Fault(format!("unknown session status {raw:?}")))?;
    }
    for (name, field) in [
        (LAST_ACTIVE_AT, &mut session.last_active_at),
        (ABANDON_AT, &mut session.abandon_at),
        (UPDATED_AT, &mut session.updated_at),
    ] {
        if let Some(v) = number(item, name) {
            *field = v;
        }
    }
    if let Some(raw) = string(item, LATEST_ACTIVITY) {
        session.latest_activity = Some(
            serde_json::from_str(raw)
                .map_err(|e| StoreError::Fault(format!("unreadable session activity: {e}")))?,
        );
    }
    Ok(session)
}

fn parse_client(item: &Item) -> Result<ClientRecord, StoreError> {
    let mut client: ClientRecord = parse(item)?;
    if let Some(id) = string(item, LAST_ACTIVE_SESSION_ID) {
        client.last_active_session_id = Some(id.to_string());
    }
    if let Some(at) = number(item, UPDATED_AT) {
        client.updated_at = at;
    }
    Ok(client)
}

/// A conditional field update of one item.
#[derive(Clone)]
struct FieldUpdate {
    key: Item,
    set: &'static str,
    condition: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// Expression names for attributes; every name goes through `#` (`status` is reserved).
fn names(attributes: &[&str]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|a| (format!("#{a}"), a.to_string()))
        .collect()
}

/// The field update of a session or client write, or `None` for a whole-item write.
fn field_update(write: &Write) -> Option<FieldUpdate> {
    let session_key = |client_id: &str, id: &str| {
        DynamoDbStore::key(format!("CLIENT#{client_id}"), &session_sk(id))
    };
    Some(match write {
        Write::SessionStatus {
            client_id,
            id,
            from,
            to,
            at,
            write_id,
        } => FieldUpdate {
            key: session_key(client_id, id),
            set: "SET #status = :to, #updated_at = :at, #status_write = :write",
            // Without the attribute (an item from an earlier build) the status is in `data`,
            // which a condition cannot read: the handler's read decided.
            condition: "attribute_exists(#pk) AND (#status = :from \
                OR attribute_not_exists(#status) OR #status_write = :write)",
            names: names(&[PK, STATUS, UPDATED_AT, STATUS_WRITE]),
            values: HashMap::from([
                (":to".into(), s(to.as_str())),
                (":from".into(), s(from.as_str())),
                (":at".into(), n(*at)),
                (":write".into(), s(write_id.clone())),
            ]),
        },
        Write::SessionActivity {
            client_id,
            id,
            at,
            abandon_at,
            seen,
        } => {
            let mut values = HashMap::from([
                (":at".into(), n(*at)),
                (":abandon".into(), n(*abandon_at)),
                (":active".into(), s(SessionStatus::Active.as_str())),
                (":pending".into(), s(SessionStatus::Pending.as_str())),
            ]);
            // Where the session was seen rides along in an attribute of its own (JSON), as
            // the other fields activity moves do; `parse_session` reads it over `data`.
            let set = match seen.as_ref().and_then(|a| serde_json::to_string(a).ok()) {
                Some(json) => {
                    values.insert(":seen".into(), s(json));
                    "SET #last_active_at = :at, #abandon_at = :abandon, #updated_at = :at, \
                     #latest_activity = :seen"
                }
                None => "SET #last_active_at = :at, #abandon_at = :abandon, #updated_at = :at",
            };
            let mut attributes = vec![PK, STATUS, LAST_ACTIVE_AT, ABANDON_AT, UPDATED_AT];
            if values.contains_key(":seen") {
                attributes.push(LATEST_ACTIVITY);
            }
            FieldUpdate {
                key: session_key(client_id, id),
                set,
                condition: "attribute_exists(#pk) \
                    AND (#status IN (:active, :pending) OR attribute_not_exists(#status)) \
                    AND (#last_active_at < :at OR attribute_not_exists(#last_active_at)) \
                    AND (#abandon_at > :at OR attribute_not_exists(#abandon_at))",
                names: names(&attributes),
                values,
            }
        }
        Write::UseOnce {
            key,
            at,
            expires_at,
            write_id,
        } => FieldUpdate {
            // An update rather than a put, so one expression holds the three cases: never
            // spent, spent but expired, or spent by this very write (a retried call).
            key: DynamoDbStore::key(format!("{USED_ONCE_PK_PREFIX}{key}"), "USED_ONCE"),
            set: "SET #expires_at = :until, #status_write = :write, #ttl = :ttl",
            condition: "attribute_not_exists(#pk) OR #expires_at <= :at \
                OR #status_write = :write",
            names: names(&[PK, EXPIRES_AT, STATUS_WRITE, TTL]),
            values: HashMap::from([
                (":until".into(), n(*expires_at)),
                (":at".into(), n(*at)),
                (":write".into(), s(write_id.clone())),
                (":ttl".into(), n(expires_at / 1000 + RETENTION_SECS)),
            ]),
        },
        Write::LastActiveSession {
            client_id,
            session_id,
            at,
        } => FieldUpdate {
            key: DynamoDbStore::key(format!("CLIENT#{client_id}"), "CLIENT"),
            set: "SET #last_active_session_id = :id, #updated_at = :at",
            condition: "attribute_exists(#pk)",
            names: names(&[PK, LAST_ACTIVE_SESSION_ID, UPDATED_AT]),
            values: HashMap::from([
                (":id".into(), s(session_id.clone())),
                (":at".into(), n(*at)),
            ]),
        },
        _ => return None,
    })
}

/// One item operation of a commit.
#[derive(Clone)]
enum Op {
    Put(Item, Expect),
    /// Put the item whatever is stored (`Write::ReplaceSession`).
    Overwrite(Item),
    /// Delete the item with this key if it is at this version.
    Delete(Item, u64),
    Update(FieldUpdate),
}

const TEMPLATES_PK: &str = "JWT_TEMPLATES";
/// The keyring (sealed private material) and its public half, one item each.
const KEYRING_PK: &str = "KEYRING";
const JWKS_PK: &str = "JWKS";

/// Webhook endpoints, one item each under one partition (at most a few dozen).
const WEBHOOK_ENDPOINTS_PK: &str = "WEBHOOK_ENDPOINTS";
/// The key prefix of webhook event items: the stream's filter (template.yaml) passes
/// only new items with it to the delivery function.
pub const EVENT_PK_PREFIX: &str = "EVENT#";

fn endpoint_sk(id: &str) -> String {
    format!("ENDPOINT#{id}")
}

/// An identifier's item (`domain::identifier`): one partition each, so a sign-in finds
/// its user with one strongly consistent read.
fn identifier_pk(key: &str) -> String {
    format!("IDENT#{key}")
}
const IDENTIFIER_SK: &str = "IDENT";

fn template_sk(name: &str) -> String {
    format!("TEMPLATE#{name}")
}

/// The item operations of one write: the record, and for a new session its id pointer.
fn ops_for(write: &Write) -> Result<Vec<Op>, StoreError> {
    if let Some(update) = field_update(write) {
        return Ok(vec![Op::Update(update)]);
    }
    let puts: Vec<(Item, Expect)> = match write {
        Write::SessionStatus { .. }
        | Write::SessionActivity { .. }
        | Write::LastActiveSession { .. }
        | Write::UseOnce { .. } => Vec::new(),
        Write::DeleteJwtTemplate { name, version } => {
            let key = DynamoDbStore::key(TEMPLATES_PK.into(), &template_sk(name));
            return Ok(vec![Op::Delete(key, *version)]);
        }
        Write::DeleteUser { id, version } => {
            let key = DynamoDbStore::key(format!("USER#{id}"), "USER");
            return Ok(vec![Op::Delete(key, *version)]);
        }
        Write::ReleaseIdentifier { key } => {
            let key = DynamoDbStore::key(identifier_pk(key), IDENTIFIER_SK);
            return Ok(vec![Op::Delete(key, 1)]);
        }
        Write::DeleteWebhookEndpoint { id, version } => {
            let key = DynamoDbStore::key(WEBHOOK_ENDPOINTS_PK.into(), &endpoint_sk(id));
            return Ok(vec![Op::Delete(key, *version)]);
        }
        Write::Event(e) => {
            // Unconditioned: a retried transaction rewrites the same item, which DynamoDB
            // Streams does not report again (an unchanged item makes no stream record).
            // Keyed by the event's key (a session or user): DynamoDB Streams keeps the
            // order of one partition key's records, and Lambda reads them in that order.
            let item = record_item(
                format!("{EVENT_PK_PREFIX}{}", e.key),
                format!("EVENT#{:016}#{}", e.created_at, e.id),
                e,
                1,
                Some(e.created_at),
            )?;
            return Ok(vec![Op::Overwrite(item)]);
        }
        Write::WebhookEndpoint(e, x) => vec![(
            record_item(
                WEBHOOK_ENDPOINTS_PK.into(),
                endpoint_sk(&e.id),
                e,
                e.version,
                None,
            )?,
            *x,
        )],
        Write::JwtTemplate(t, e) => vec![(
            record_item(
                TEMPLATES_PK.into(),
                template_sk(&t.name),
                t,
                t.version,
                None,
            )?,
            *e,
        )],
        Write::User(u, e) => vec![(
            record_item(format!("USER#{}", u.id), "USER".into(), u, u.version, None)?,
            *e,
        )],
        // Always at version 1: taken once, then only given up.
        Write::Identifier(i) => vec![(
            record_item(identifier_pk(&i.key), IDENTIFIER_SK.into(), i, 1, None)?,
            Expect::Absent,
        )],
        Write::Client(c, e) => {
            let mut item = record_item(
                format!("CLIENT#{}", c.id),
                "CLIENT".into(),
                c,
                c.version,
                Some(c.retain_until()),
            )?;
            if let Some(id) = &c.last_active_session_id {
                item.insert(LAST_ACTIVE_SESSION_ID.into(), s(id.clone()));
            }
            vec![(item, *e)]
        }
        Write::SignInToken(t, e) => vec![(
            record_item(
                format!("TICKET#{}", t.ticket_hash),
                "TICKET".into(),
                t,
                t.version,
                Some(t.expires_at),
            )?,
            *e,
        )],
        Write::NewSession(sess) => {
            let (item, pointer) = session_items(sess)?;
            vec![(item, Expect::Absent), (pointer, Expect::Absent)]
        }
        Write::ReplaceSession(sess) => {
            // Whole items, unconditioned: the status write id attribute goes with the old.
            let (item, pointer) = session_items(sess)?;
            return Ok(vec![Op::Overwrite(item), Op::Overwrite(pointer)]);
        }
    };
    Ok(puts.into_iter().map(|(i, e)| Op::Put(i, e)).collect())
}

/// A session's item, and the pointer that lets the Backend API find it by id alone.
fn session_items(sess: &Session) -> Result<(Item, Item), StoreError> {
    // The activity lives in its own attribute only (activity updates rewrite it there), so
    // that a session item stays within one write unit (1 KB).
    let mut data = sess.clone();
    let activity = data.latest_activity.take();
    let mut item = record_item(
        format!("CLIENT#{}", sess.client_id),
        session_sk(&sess.id),
        &data,
        1,
        Some(sess.expire_at),
    )?;
    if let Some(activity) = activity {
        let json = serde_json::to_string(&activity)
            .map_err(|e| StoreError::Fault(format!("session activity: {e}")))?;
        item.insert(LATEST_ACTIVITY.into(), s(json));
    }
    item.insert(STATUS.into(), s(sess.status.as_str()));
    item.insert(LAST_ACTIVE_AT.into(), n(sess.last_active_at));
    item.insert(ABANDON_AT.into(), n(sess.abandon_at));
    item.insert(UPDATED_AT.into(), n(sess.updated_at));
    item.insert(GSI1_PK.into(), s(format!("USER#{}", sess.user_id)));
    item.insert(
        GSI1_SK.into(),
        s(format!("SESSION#{:016}#{}", sess.created_at, sess.id)),
    );
    let pointer = HashMap::from([
        (PK.to_string(), s(format!("SESSION#{}", sess.id))),
        (SK.to_string(), s("SESSION")),
        ("client_id".to_string(), s(sess.client_id.clone())),
        (TTL.to_string(), n(sess.expire_at / 1000 + RETENTION_SECS)),
    ]);
    Ok((item, pointer))
}

/// Sets an expectation's condition on any DynamoDB write builder (they share the setters).
macro_rules! conditioned {
    ($builder:expr, $expect:expr) => {
        conditioned!($builder, $expect, None)
    };
    ($builder:expr, $expect:expr, $write:expr) => {{
        let (expr, names, values) = condition($expect, $write);
        $builder
            .condition_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
    }};
}

/// Sets a field update on any DynamoDB update builder (alone or in a transaction).
macro_rules! field_updated {
    ($builder:expr, $update:expr) => {{
        let u: FieldUpdate = $update;
        $builder
            .set_key(Some(u.key))
            .update_expression(u.set)
            .condition_expression(u.condition)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
    }};
}

/// The condition expression for an expectation, with its names and values. With `write`
/// (the id a put carries, [`WRITE_ID`]), an item this very write already put also passes:
/// the SDK's retry of a put whose answer was lost then succeeds, instead of failing its own
/// condition and reading as a lost race (a create answering 409 for the record it made).
fn condition(
    expect: Expect,
    write: Option<&str>,
) -> (
    String,
    HashMap<String, String>,
    Option<HashMap<String, AttributeValue>>,
) {
    let (expr, mut names, mut values) = match expect {
        Expect::Absent => (
            "attribute_not_exists(#pk)".to_string(),
            HashMap::from([("#pk".to_string(), PK.to_string())]),
            HashMap::new(),
        ),
        Expect::Version(v) => (
            "#version = :expected".to_string(),
            HashMap::from([("#version".to_string(), "version".to_string())]),
            HashMap::from([(":expected".to_string(), n(v as i64))]),
        ),
    };
    let expr = match write {
        Some(id) => {
            names.insert("#write".into(), WRITE_ID.into());
            values.insert(":write".into(), s(id));
            format!("{expr} OR #write = :write")
        }
        None => expr,
    };
    (expr, names, (!values.is_empty()).then_some(values))
}

/// The write id a put carries (see [`condition`]).
fn write_of(item: &Item) -> Option<&str> {
    string(item, WRITE_ID)
}

/// Stamps every put of one commit with the commit's write id.
fn stamped(mut ops: Vec<Op>) -> Vec<Op> {
    let write = crate::ids::new_id("write");
    for op in &mut ops {
        if let Op::Put(item, _) = op {
            item.insert(WRITE_ID.into(), s(write.clone()));
        }
    }
    ops
}

/// Sorts an SDK failure: a condition that did not hold is a conflict; throttling, time-outs
/// and an unreachable service are unavailability; anything else is a fault.
pub(crate) fn classify<E>(err: SdkError<E, aws_smithy_runtime_api::http::Response>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const THROTTLED: [&str; 6] = [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    ];
    let code = err.code().map(str::to_string);
    match (&err, code.as_deref()) {
        // A single-item write that met a transaction in flight on its item is a lost race too.
        (_, Some("ConditionalCheckFailedException" | "TransactionConflictException")) => {
            StoreError::Conflict
        }
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            StoreError::Unavailable(DisplayErrorContext(&err).to_string())
        }
        (_, Some(code)) if THROTTLED.contains(&code) => StoreError::Unavailable(code.to_string()),
        _ => StoreError::Fault(DisplayErrorContext(&err).to_string()),
    }
}

#[async_trait]
impl Store for DynamoDbStore {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.get(Self::key(KEYRING_PK.into(), KEYRING_PK))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        self.get(Self::key(JWKS_PK.into(), JWKS_PK))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError> {
        // The public half is its own item, so that the JWKS function's IAM policy can be
        // limited to it (`dynamodb:LeadingKeys`); both are written in one transaction.
        let public = record_item(
            JWKS_PK.into(),
            JWKS_PK.into(),
            &keyring.public_view(),
            keyring.version,
            None,
        )?;
        let public_expect = Expect::for_next(keyring.version);
        let private = record_item(
            KEYRING_PK.into(),
            KEYRING_PK.into(),
            &keyring,
            keyring.version,
            None,
        )?;
        self.run(stamped(vec![
            Op::Put(private, expect),
            Op::Put(public, public_expect),
        ]))
        .await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.get(Self::key(format!("USER#{id}"), "USER"))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| Self::key(format!("USER#{id}"), "USER"))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Fault(e.to_string()))?,
            );
            // Unprocessed keys are retried a few times, then the store is "unavailable".
            for _ in 0..5 {
                let Some(request) = pending.take() else { break };
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(classify)?;
                if let Some(items) = out.responses.as_ref().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        users.push(Arc::new(parse(item)?));
                    }
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
            }
            if pending.is_some() {
                return Err(StoreError::Unavailable(
                    "BatchGetItem left keys unprocessed".into(),
                ));
            }
        }
        Ok(users)
    }

    async fn get_identifier(&self, key: &str) -> Result<Option<Identifier>, StoreError> {
        self.get(Self::key(identifier_pk(key), IDENTIFIER_SK))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn get_sign_in_token(
        &self,
        ticket_hash: &str,
    ) -> Result<Option<SignInToken>, StoreError> {
        self.get(Self::key(format!("TICKET#{ticket_hash}"), "TICKET"))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError> {
        let items = self
            .query_all(
                None,
                "#pk = :pk",
                vec![(":pk", format!("CLIENT#{id}"))],
                false,
            )
            .await?;
        let mut client: Option<ClientRecord> = None;
        let mut sessions: Vec<Session> = Vec::new();
        for item in &items {
            match item.get(SK) {
                Some(AttributeValue::S(sk)) if sk == "CLIENT" => client = Some(parse_client(item)?),
                Some(AttributeValue::S(sk)) if sk.starts_with("SESSION#") => {
                    sessions.push(parse_session(item)?)
                }
                _ => {}
            }
        }
        sessions.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(client.map(|client| ClientState { client, sessions }))
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let Some(pointer) = self
            .get(Self::key(format!("SESSION#{id}"), "SESSION"))
            .await?
        else {
            return Ok(None);
        };
        let Some(AttributeValue::S(client_id)) = pointer.get("client_id") else {
            return Err(StoreError::Fault(
                "session pointer without client_id".into(),
            ));
        };
        self.get(Self::key(format!("CLIENT#{client_id}"), &session_sk(id)))
            .await?
            .map(|i| parse_session(&i))
            .transpose()
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let items = match (&filter.client_id, &filter.user_id) {
            (Some(client_id), _) => {
                self.query_all(
                    None,
                    "#pk = :pk AND begins_with(#sk, :session)",
                    vec![
                        (":pk", format!("CLIENT#{client_id}")),
                        (":session", "SESSION#".into()),
                    ],
                    true,
                )
                .await?
            }
            // The index sorts a user's sessions by creation: newest first, no further.
            (None, Some(user_id)) => {
                self.query_first(
                    Some(GSI1),
                    "#gpk = :pk",
                    vec![(":pk", format!("USER#{user_id}"))],
                    true,
                    filter.newest,
                )
                .await?
            }
            (None, None) => self.scan_sessions().await?,
        };
        let sessions: Vec<Session> = items.iter().map(parse_session).collect::<Result<_, _>>()?;
        Ok(filter.select(sessions))
    }

    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError> {
        self.get(Self::key(TEMPLATES_PK.into(), &template_sk(name)))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        let items = self
            .query_all(
                None,
                "#pk = :pk",
                vec![(":pk", TEMPLATES_PK.to_string())],
                false,
            )
            .await?;
        let mut all: Vec<JwtTemplate> = items.iter().map(parse).collect::<Result<_, _>>()?;
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    async fn list_webhook_endpoints(
        &self,
    ) -> Result<Vec<crate::webhooks::WebhookEndpoint>, StoreError> {
        let items = self
            .query_all(
                None,
                "#pk = :pk",
                vec![(":pk", WEBHOOK_ENDPOINTS_PK.to_string())],
                false,
            )
            .await?;
        let mut all: Vec<crate::webhooks::WebhookEndpoint> =
            items.iter().map(parse).collect::<Result<_, _>>()?;
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for write in &writes {
            ops.extend(ops_for(write)?);
        }
        self.run(stamped(ops)).await
    }
}

impl DynamoDbStore {
    /// Runs item operations: one alone as a single conditional call, more as one
    /// transaction. When the SDK's attempts end without an answer, the last one may have
    /// been applied: the same call, with the same write ids and transaction token, is sent
    /// once more, for at most [`CONFIRM_WITHIN`]. It answers success whether the first call
    /// had landed or lands now, so a request answers 503 only when the store stayed
    /// unreachable throughout. (Not for a lone delete, whose repeat would read as a lost
    /// race.)
    async fn run(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let token = crate::ids::new_id("tx");
        let repeatable = ops.len() > 1 || !matches!(ops.first(), Some(Op::Delete(..)));
        match self.send_ops(ops.clone(), &token).await {
            Err(StoreError::Unavailable(why)) if repeatable => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match tokio::time::timeout(CONFIRM_WITHIN, self.send_ops(ops, &token)).await {
                    Ok(Err(StoreError::Unavailable(_))) | Err(_) => {
                        Err(StoreError::Unavailable(why))
                    }
                    Ok(other) => other,
                }
            }
            other => other,
        }
    }

    /// One send of `ops` (see [`DynamoDbStore::run`]), a transaction under `token`.
    async fn send_ops(&self, mut ops: Vec<Op>, token: &str) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        if ops.len() == 1 {
            return match ops.remove(0) {
                Op::Put(item, expect) => {
                    let write = write_of(&item).map(str::to_string);
                    let put = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item));
                    conditioned!(put, expect, write.as_deref())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(classify)
                }
                Op::Overwrite(item) => self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(classify),
                Op::Delete(key, version) => {
                    let delete = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(key));
                    conditioned!(delete, Expect::Version(version))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(classify)
                }
                Op::Update(u) => {
                    let update = self.client.update_item().table_name(&self.table);
                    field_updated!(update, u)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(classify)
                }
            };
        }
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            let fault = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Fault(e.to_string());
            items.push(match op {
                Op::Put(item, expect) => {
                    let write = write_of(&item).map(str::to_string);
                    let put = Put::builder().table_name(&self.table).set_item(Some(item));
                    TransactWriteItem::builder()
                        .put(
                            conditioned!(put, expect, write.as_deref())
                                .build()
                                .map_err(fault)?,
                        )
                        .build()
                }
                Op::Overwrite(item) => {
                    let put = Put::builder().table_name(&self.table).set_item(Some(item));
                    TransactWriteItem::builder()
                        .put(put.build().map_err(fault)?)
                        .build()
                }
                Op::Delete(key, version) => {
                    let delete = Delete::builder().table_name(&self.table).set_key(Some(key));
                    let delete = conditioned!(delete, Expect::Version(version))
                        .build()
                        .map_err(fault)?;
                    TransactWriteItem::builder().delete(delete).build()
                }
                Op::Update(u) => {
                    let update = Update::builder().table_name(&self.table);
                    let update = field_updated!(update, u).build().map_err(fault)?;
                    TransactWriteItem::builder().update(update).build()
                }
            });
        }
        // One token for every attempt of this commit: when the SDK retries a call whose
        // answer was lost (a time-out after DynamoDB applied it), DynamoDB recognises the
        // token and answers success without applying it again, for 10 minutes. Without it
        // the retry would fail its own conditions and read as a lost race.
        let request = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token);
        let mut result = request.clone().send().await;
        // The first call may still be in flight on DynamoDB when a retry of it arrives:
        // wait for it, with the same token.
        for pause_ms in [50, 100, 200, 400, 800] {
            let in_progress = matches!(
                result.as_ref().map_err(|e| e.as_service_error()),
                Err(Some(
                    TransactWriteItemsError::TransactionInProgressException(_)
                ))
            );
            if !in_progress {
                break;
            }
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            result = request.clone().send().await;
        }
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                // A cancelled transaction wrote nothing. It lost a race when a condition
                // failed or another transaction held an item.
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                    err.as_service_error()
                {
                    let lost_race = cancel.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        )
                    });
                    if lost_race {
                        return Err(StoreError::Conflict);
                    }
                }
                Err(classify(err))
            }
        }
    }
}
