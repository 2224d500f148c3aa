//! What the other servers announce: their procedures, with compiled args
//! validators so that a gateway rejects bad calls without a broker hop, and
//! the instances serving each, forgotten when they fall silent.

use super::wire::Announcement;
use crate::registry;
use crate::{Address, ProcedureSpec, RpcError};
use jsonschema::Validator;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// An announced procedure.
pub(crate) struct RemoteProcedure {
    pub(crate) spec: ProcedureSpec,
    validator: Validator,
}

impl RemoteProcedure {
    pub(crate) fn validate(&self, args: &Value) -> Result<(), RpcError> {
        if self.validator.is_valid(args) {
            Ok(())
        } else {
            Err(registry::validation_error(&self.validator, args))
        }
    }
}

/// A handler server, as telemetry shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RemoteServer {
    /// Its instance id.
    pub instance_id: String,
    /// Its display name.
    pub name: String,
    /// When it last announced itself.
    pub last_seen: SystemTime,
    /// How many procedures it serves.
    pub procedures: usize,
}

struct Instance {
    name: String,
    last_seen: Instant,
    last_seen_at: SystemTime,
    silent_after: Duration,
    procedures: Vec<Address>,
}

#[derive(Default)]
struct State {
    instances: HashMap<String, Instance>,
    procedures: BTreeMap<Address, Arc<RemoteProcedure>>,
}

/// The remote procedures a server knows of.
#[derive(Default)]
pub(crate) struct Remote {
    state: Mutex<State>,
}

impl Remote {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes in an announcement from another server.
    pub(crate) fn apply(&self, announcement: Announcement) {
        match announcement {
            Announcement::Announce {
                instance_id,
                server,
                interval_ms,
                procedures,
            } => {
                let mut state = self.state();
                let addresses = procedures.iter().map(|p| p.address.clone()).collect();
                for spec in procedures {
                    let changed = state
                        .procedures
                        .get(&spec.address)
                        .is_none_or(|known| known.spec != spec);
                    if changed
                        && let Ok(validator) = registry::compile(&spec.address, &spec.args_schema)
                    {
                        state.procedures.insert(
                            spec.address.clone(),
                            Arc::new(RemoteProcedure { spec, validator }),
                        );
                    }
                }
                // Silent for three intervals (at least 3 s): gone.
                let silent_after = Duration::from_millis(interval_ms.saturating_mul(3))
                    .max(Duration::from_secs(3));
                state.instances.insert(
                    instance_id,
                    Instance {
                        name: server,
                        last_seen: Instant::now(),
                        last_seen_at: SystemTime::now(),
                        silent_after,
                        procedures: addresses,
                    },
                );
                prune(&mut state);
            }
            Announcement::Goodbye { instance_id } => {
                let mut state = self.state();
                state.instances.remove(&instance_id);
                prune(&mut state);
            }
            Announcement::Query { .. } => {}
        }
    }

    /// An announced procedure with at least one live instance.
    pub(crate) fn get(&self, address: &Address) -> Option<Arc<RemoteProcedure>> {
        let mut state = self.state();
        expire(&mut state);
        state.procedures.get(address).cloned()
    }

    /// Every announced procedure with a live instance.
    pub(crate) fn procedures(&self) -> Vec<ProcedureSpec> {
        let mut state = self.state();
        expire(&mut state);
        state.procedures.values().map(|p| p.spec.clone()).collect()
    }

    /// Every live handler server.
    pub(crate) fn servers(&self) -> Vec<RemoteServer> {
        let mut state = self.state();
        expire(&mut state);
        let mut servers: Vec<RemoteServer> = state
            .instances
            .iter()
            .map(|(id, instance)| RemoteServer {
                instance_id: id.clone(),
                name: instance.name.clone(),
                last_seen: instance.last_seen_at,
                procedures: instance.procedures.len(),
            })
            .collect();
        servers.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.instance_id.cmp(&b.instance_id))
        });
        servers
    }
}

fn expire(state: &mut State) {
    let before = state.instances.len();
    state
        .instances
        .retain(|_, i| i.last_seen.elapsed() < i.silent_after);
    if state.instances.len() != before {
        prune(state);
    }
}

/// Forgets procedures that no live instance serves.
fn prune(state: &mut State) {
    let served: HashSet<&Address> = state
        .instances
        .values()
        .flat_map(|i| i.procedures.iter())
        .collect();
    state
        .procedures
        .retain(|address, _| served.contains(address));
}
