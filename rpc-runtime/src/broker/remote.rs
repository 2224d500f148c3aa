//! What the other servers announce: their procedures, with compiled args
//! validators so that a gateway rejects bad calls without a broker hop, and
//! the instances serving each, forgotten when they fall silent.

use super::wire::{Announcement, queue_name};
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
    /// Its queue, which is also the routing key of its calls.
    pub(crate) queue: lapin::types::ShortString,
    validator: Validator,
}

impl registry::Rules for RemoteProcedure {
    fn spec(&self) -> &ProcedureSpec {
        &self.spec
    }

    fn validate(&self, args: &Value) -> Result<(), RpcError> {
        registry::validate(&self.validator, args)
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
    last_seen_at: SystemTime,
    /// When it counts as gone unless it announces itself again.
    silent_at: Instant,
    procedures: Vec<Address>,
}

#[derive(Default)]
struct State {
    instances: HashMap<String, Instance>,
    procedures: BTreeMap<Address, Arc<RemoteProcedure>>,
    /// No instance falls silent before this (the earliest `silent_at`, or
    /// earlier): looking a procedure up checks one instant, not every
    /// instance.
    next_expiry: Option<Instant>,
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

    /// The state with the silent instances forgotten.
    fn live(&self) -> MutexGuard<'_, State> {
        let mut state = self.state();
        state.expire(Instant::now());
        state
    }

    /// Takes in an announcement from another server.
    pub(crate) fn apply(&self, announcement: Announcement) {
        self.state().apply(announcement, Instant::now());
    }

    /// An announced procedure with at least one live instance.
    pub(crate) fn get(&self, address: &Address) -> Option<Arc<RemoteProcedure>> {
        self.live().procedures.get(address).cloned()
    }

    /// Every announced procedure with a live instance.
    pub(crate) fn procedures(&self) -> Vec<ProcedureSpec> {
        self.live()
            .procedures
            .values()
            .map(|p| p.spec.clone())
            .collect()
    }

    /// Every live handler server.
    pub(crate) fn servers(&self) -> Vec<RemoteServer> {
        let mut servers: Vec<RemoteServer> = self
            .live()
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

impl State {
    fn apply(&mut self, announcement: Announcement, now: Instant) {
        match announcement {
            Announcement::Announce {
                instance_id,
                server,
                interval_ms,
                procedures,
            } => {
                let addresses = procedures.iter().map(|p| p.address.clone()).collect();
                for spec in procedures {
                    let changed = self
                        .procedures
                        .get(&spec.address)
                        .is_none_or(|known| known.spec != spec);
                    if changed
                        && let Ok(validator) = registry::compile(&spec.address, &spec.args_schema)
                    {
                        self.procedures.insert(
                            spec.address.clone(),
                            Arc::new(RemoteProcedure {
                                queue: queue_name(&spec.address).into(),
                                spec,
                                validator,
                            }),
                        );
                    }
                }
                // Silent for three intervals (at least 3 s): gone.
                let silent_after = Duration::from_millis(interval_ms.saturating_mul(3))
                    .max(Duration::from_secs(3));
                let silent_at = crate::pipeline::after(now, silent_after);
                self.next_expiry = Some(self.next_expiry.map_or(silent_at, |t| t.min(silent_at)));
                self.instances.insert(
                    instance_id,
                    Instance {
                        name: server,
                        last_seen_at: SystemTime::now(),
                        silent_at,
                        procedures: addresses,
                    },
                );
                self.prune();
            }
            Announcement::Goodbye { instance_id } => {
                self.instances.remove(&instance_id);
                self.prune();
            }
            Announcement::Query { .. } | Announcement::Presence { .. } => {}
        }
    }

    /// Forgets the instances silent since before `now`, once one may be.
    fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|next| now < next) {
            return;
        }
        let before = self.instances.len();
        self.instances.retain(|_, i| now < i.silent_at);
        if self.instances.len() != before {
            self.prune();
        }
        self.next_expiry = self.instances.values().map(|i| i.silent_at).min();
    }

    /// Forgets procedures that no live instance serves.
    fn prune(&mut self) {
        let served: HashSet<&Address> = self
            .instances
            .values()
            .flat_map(|i| i.procedures.iter())
            .collect();
        self.procedures
            .retain(|address, _| served.contains(address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(procedure: &str) -> ProcedureSpec {
        serde_json::from_value(json!({
            "scope": "s",
            "procedure": procedure,
            "version": "1",
            "description": "",
            "internal": false,
            "auth": false,
            "argsSchema": {"type": "object"},
            "outputSchema": {},
        }))
        .expect("a spec")
    }

    fn announce(instance: &str, interval_ms: u64, procedures: &[&str]) -> Announcement {
        Announcement::Announce {
            instance_id: instance.into(),
            server: instance.into(),
            interval_ms,
            procedures: procedures.iter().map(|p| spec(p)).collect(),
        }
    }

    fn known(state: &mut State, now: Instant) -> Vec<String> {
        state.expire(now);
        state
            .procedures
            .keys()
            .map(|a| a.procedure.to_string())
            .collect()
    }

    #[test]
    fn silent_instances_expire_and_take_what_only_they_served() {
        let start = Instant::now();
        let mut state = State::default();
        state.apply(announce("a", 1000, &["one", "both"]), start);
        state.apply(announce("b", 2000, &["both"]), start);
        let s = Duration::from_secs;
        assert_eq!(known(&mut state, start + s(2)), ["both", "one"]);
        // `a` is silent after three of its intervals, `b` after six seconds.
        assert_eq!(known(&mut state, start + s(3)), ["both"]);
        assert_eq!(state.instances.len(), 1);
        // Announcing again keeps an instance.
        state.apply(announce("b", 2000, &["both"]), start + s(5));
        assert_eq!(known(&mut state, start + s(10)), ["both"]);
        assert_eq!(known(&mut state, start + s(11)), Vec::<String>::new());
        assert!(state.instances.is_empty() && state.next_expiry.is_none());
    }

    #[test]
    fn an_endless_interval_neither_panics_nor_expires() {
        let start = Instant::now();
        let mut state = State::default();
        state.apply(announce("a", u64::MAX, &["one"]), start);
        let year = Duration::from_secs(365 * 24 * 60 * 60);
        assert_eq!(known(&mut state, start + year), ["one"]);
    }

    #[test]
    fn the_shortest_silence_is_three_seconds_and_goodbye_is_at_once() {
        let start = Instant::now();
        let mut state = State::default();
        state.apply(announce("a", 10, &["one"]), start);
        state.apply(announce("b", 10, &["two"]), start);
        assert_eq!(
            known(&mut state, start + Duration::from_millis(2900)),
            ["one", "two"]
        );
        state.apply(
            Announcement::Goodbye {
                instance_id: "a".into(),
            },
            start,
        );
        assert_eq!(known(&mut state, start), ["two"]);
        assert_eq!(
            known(&mut state, start + Duration::from_secs(3)),
            Vec::<String>::new()
        );
    }
}
