//! The SQLite store's webhook outbox (`crate::store::Outbox`). Fanning out and leasing
//! happen in one immediate transaction, so processes sharing the file never lease one
//! delivery twice.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{params, Connection, TransactionBehavior};

use super::{from_json, records, sql, to_json, SqliteStore};
use crate::clock::{Clock, Millis};
use crate::store::{Delivery, Outbox, Room, StoreError};
use crate::webhooks::{Event, WebhookEndpoint};

/// How long a dead-lettered delivery is kept (as long as SQS keeps a dead letter at most).
const DEAD_LETTER_RETENTION_MS: Millis = 14 * 24 * 3600 * 1000;

pub(super) fn record_event(tx: &Connection, e: &Event) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO webhook_events (data) VALUES (?1)")
        .and_then(|mut st| st.execute(params![to_json(e).map_err(to_sql)?]))
        .map_err(sql)?;
    Ok(())
}

pub(super) fn put_endpoint(tx: &Connection, e: &WebhookEndpoint) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO webhook_endpoints (id, version, created_at, data) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, data = excluded.data",
    )
    .and_then(|mut st| {
        st.execute(params![
            e.id,
            e.version as i64,
            e.created_at,
            to_json(e).map_err(to_sql)?
        ])
    })
    .map_err(sql)?;
    Ok(())
}

fn to_sql(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(e.to_string().into())
}

fn group_key(endpoint_id: &str, key: &str) -> String {
    format!("{endpoint_id}\n{key}")
}

fn due(
    conn: &mut Connection,
    now: Millis,
    lease_until: Millis,
    room: &Room,
) -> Result<Vec<Delivery>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let events: Vec<(i64, String)> = {
        let mut st = tx
            .prepare_cached("SELECT seq, data FROM webhook_events ORDER BY seq")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    if !events.is_empty() {
        let endpoints: Vec<WebhookEndpoint> = records(
            &tx,
            "SELECT data FROM webhook_endpoints ORDER BY created_at, id",
            [],
        )?;
        for (seq, data) in &events {
            let event: Event = from_json(data)?;
            for endpoint in endpoints.iter().filter(|e| e.wants(event.kind)) {
                tx.prepare_cached(
                    "INSERT INTO webhook_deliveries (endpoint_id, group_key, next_at, event) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        endpoint.id,
                        group_key(&endpoint.id, &event.key),
                        event.created_at,
                        data
                    ])
                })
                .map_err(sql)?;
            }
            tx.execute("DELETE FROM webhook_events WHERE seq = ?1", params![seq])
                .map_err(sql)?;
        }
    }
    // Of each group, its oldest live delivery, if due and not leased; of each endpoint at
    // most its room's worth (numbered per endpoint), so one endpoint's backlog never
    // crowds out another's.
    let heads: Vec<(i64, String, u32, String)> = {
        let mut st = tx
            .prepare_cached(
                "SELECT seq, endpoint_id, attempts, event FROM ( \
                   SELECT d.seq, d.endpoint_id, d.attempts, d.event, \
                          ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.seq) AS n \
                   FROM webhook_deliveries d \
                   WHERE d.dead_until IS NULL AND d.next_at <= ?1 AND d.lease_until <= ?1 \
                   AND d.seq = (SELECT MIN(o.seq) FROM webhook_deliveries o \
                                WHERE o.group_key = d.group_key AND o.dead_until IS NULL)) \
                 WHERE n <= ?2 ORDER BY seq",
            )
            .map_err(sql)?;
        let rows = st
            .query_map(
                params![now, room.per_endpoint.min(i64::MAX as usize) as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(sql)?;
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut heads = Vec::new();
        for row in rows {
            if heads.len() >= room.total {
                break;
            }
            let row: (i64, String, u32, String) = row.map_err(sql)?;
            let of_endpoint = taken.entry(row.1.clone()).or_default();
            if *of_endpoint < room.free(&row.1) {
                *of_endpoint += 1;
                heads.push(row);
            }
        }
        heads
    };
    let mut out = Vec::with_capacity(heads.len());
    for (seq, endpoint_id, attempts, event) in heads {
        tx.execute(
            "UPDATE webhook_deliveries SET lease_until = ?2 WHERE seq = ?1",
            params![seq, lease_until],
        )
        .map_err(sql)?;
        out.push(Delivery {
            id: seq,
            endpoint_id,
            event: from_json(&event)?,
            attempts,
        });
    }
    tx.commit().map_err(sql)?;
    Ok(out)
}

/// Whether a round has anything to do: events to fan out, or a delivery due. A read, so
/// that the worker's idle rounds (five a second) never take the write lock.
fn has_work(conn: &Connection, now: Millis) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM webhook_events) OR EXISTS (SELECT 1 FROM \
         webhook_deliveries WHERE dead_until IS NULL AND next_at <= ?1 AND lease_until <= ?1)",
    )
    .and_then(|mut st| st.query_row(params![now], |r| r.get(0)))
    .map_err(sql)
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn lease_due(
        &self,
        now: Millis,
        lease_until: Millis,
        room: &Room,
    ) -> Result<Vec<Delivery>, StoreError> {
        if !self.read(move |conn| has_work(conn, now)).await? {
            return Ok(Vec::new());
        }
        let room = room.clone();
        self.write(move |conn| due(conn, now, lease_until, &room))
            .await
    }

    async fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute("DELETE FROM webhook_deliveries WHERE seq = ?1", params![id])
                .map(|_| ())
                .map_err(sql)
        })
        .await
    }

    async fn failed(
        &self,
        id: i64,
        attempts: u32,
        next_at: Option<Millis>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.chars().take(500).collect::<String>();
        // Dead letters are kept for a while, then swept (`dead_until` is in the past).
        let now = crate::clock::SystemClock.now_ms();
        self.write(move |conn| {
            let result = match next_at {
                Some(at) => conn.execute(
                    "UPDATE webhook_deliveries SET attempts = ?2, next_at = ?3, lease_until = 0, \
                     last_error = ?4 WHERE seq = ?1",
                    params![id, attempts, at, error],
                ),
                None => conn.execute(
                    "UPDATE webhook_deliveries SET attempts = ?2, lease_until = 0, \
                     last_error = ?4, dead_until = ?3 WHERE seq = ?1",
                    params![
                        id,
                        attempts,
                        now + DEAD_LETTER_RETENTION_MS - super::RETENTION_MS,
                        error
                    ],
                ),
            };
            result.map(|_| ()).map_err(sql)
        })
        .await
    }
}
