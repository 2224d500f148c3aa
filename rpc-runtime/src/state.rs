//! Application state: values the server is given once
//! ([`ServerBuilder::state`](crate::ServerBuilder::state)) and that
//! procedures ask for by type in their signature (`db: State<Db>`).

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// A state value a procedure asks for: write `db: State<Db>` among its
/// parameters, in any order with the args and the [`Context`](crate::Context).
///
/// The server clones the value it was given with
/// [`ServerBuilder::state`](crate::ServerBuilder::state) for each call, so
/// `T` is typically a handle (a pool, an `Arc`). `build()` fails if a hosted
/// procedure needs a state type the builder was not given, so a call never
/// fails for missing state. In a unit test, call the function with
/// `State(value)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// What a state type must be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be application state",
    label = "state values must be `Clone + Send + Sync + 'static`",
    note = "wrap it in an `Arc` if it cannot be cloned"
)]
pub trait StateValue: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> StateValue for T {}

/// A state type a procedure needs, as `#[rpc]` records it.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct StateKey {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
}

impl StateKey {
    /// The key of `T`.
    pub fn of<T: StateValue>() -> Self {
        StateKey {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }

    /// The type's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The state values of a server, one per type.
#[derive(Default)]
pub(crate) struct States {
    values: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl States {
    /// Adds a value; a second value of the same type replaces the first.
    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the builder's"))]
    pub(crate) fn insert<T: StateValue>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Box::new(value));
    }

    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the builder's"))]
    pub(crate) fn contains(&self, key: &StateKey) -> bool {
        self.values.contains_key(&key.id)
    }

    /// A clone of the value of type `T`.
    pub(crate) fn get<T: StateValue>(&self) -> Option<T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }
}
