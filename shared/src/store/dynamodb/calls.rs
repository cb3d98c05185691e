//! Counts the DynamoDB operations a store makes, by name, and the capacity units they are
//! billed: an SDK interceptor that runs once per operation (not per retry). Tests hold each
//! endpoint to its documented count, and the cost model in BENCHMARKS.md reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Operations by name, and the on-demand request units they cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// Operations by name; the items of transactions also by their action, as
    /// `TransactWriteItems/Put` (IAM authorises each item by its own action).
    pub operations: BTreeMap<String, u32>,
    /// Read request units: one per strongly consistent read of up to 4 KB.
    pub read_units: u32,
    /// Write request units: one per write of up to 1 KB, two per item in a transaction.
    pub write_units: u32,
}

impl Calls {
    /// The units of one operation. Reads assume what the table keeps to (a client's
    /// partition up to 4 KB); a put counts its item's size in KB (webhook event items are
    /// a few KB); updates and deletes touch items of at most 1 KB. All checked by
    /// `shared/tests/suite/dynamodb_calls.rs`.
    fn record(&mut self, operation: &str, batch_keys: usize, put_kb: u32, items: &[(&str, u32)]) {
        *self.operations.entry(operation.to_string()).or_default() += 1;
        for (action, _) in items {
            *self
                .operations
                .entry(format!("{operation}/{action}"))
                .or_default() += 1;
        }
        match operation {
            "GetItem" | "Query" | "Scan" => self.read_units += 1,
            "BatchGetItem" => self.read_units += batch_keys as u32,
            "PutItem" => self.write_units += put_kb,
            "UpdateItem" | "DeleteItem" => self.write_units += 1,
            "TransactWriteItems" => {
                self.write_units += items.iter().map(|(_, kb)| 2 * kb).sum::<u32>()
            }
            _ => {}
        }
    }
}

/// DynamoDB's size of an item: attribute names plus values, strings in UTF-8 bytes,
/// numbers about a byte per two digits plus one.
pub fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    _ => 0,
                }
        })
        .sum()
}

/// An item's billed size in KB (at least 1).
fn item_kb(item: &HashMap<String, AttributeValue>) -> u32 {
    item_bytes(item).div_ceil(1024).max(1) as u32
}

#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<Mutex<Calls>>);

impl CallCounter {
    /// The calls so far, and a fresh start.
    pub fn take(&self) -> Calls {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Before serialization, not before execution: client interceptors see the operation's
    // metadata only once its configuration is applied. It still runs once per operation.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let input = context.input();
            let batch_keys = input
                .downcast_ref::<BatchGetItemInput>()
                .and_then(|i| i.request_items.as_ref())
                .map_or(0, |tables| tables.values().map(|k| k.keys.len()).sum());
            let put_kb = input
                .downcast_ref::<PutItemInput>()
                .and_then(|i| i.item.as_ref())
                .map_or(1, item_kb);
            let transaction_items: Vec<(&str, u32)> = input
                .downcast_ref::<TransactWriteItemsInput>()
                .and_then(|i| i.transact_items.as_ref())
                .into_iter()
                .flatten()
                .map(|item| {
                    if let Some(put) = &item.put {
                        ("Put", item_kb(&put.item))
                    } else if item.update.is_some() {
                        ("Update", 1)
                    } else if item.delete.is_some() {
                        ("Delete", 1)
                    } else {
                        ("ConditionCheck", 1)
                    }
                })
                .collect();
            self.0.lock().unwrap_or_else(|p| p.into_inner()).record(
                metadata.name(),
                batch_keys,
                put_kb,
                &transaction_items,
            );
        }
        Ok(())
    }
}
