//! The handlers of a small orders app, built on `coderunner` as a library:
//! `register` is all the framework needs, `src/main.rs` is the binary.

use coderunner::event::persistence;
use coderunner::{Before, Context, HandlerError, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The error code of an order without a positive total.
pub const BAD_TOTAL: i64 = 5001;

/// A row of `Order`, as far as these handlers care.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// The order's total; must be positive.
    pub total: f64,
    /// Every other column.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `beforeCreate` on `Order`: a total must be positive; it is rounded to cents.
pub async fn before_create(_ctx: Context, mut order: Order) -> Result<Before<Order>, HandlerError> {
    if order.total <= 0.0 {
        return Err(
            HandlerError::new(BAD_TOTAL, "An order needs a positive total").with_status(400),
        );
    }
    order.total = (order.total * 100.0).round() / 100.0;
    Ok(Before::Continue(order))
}

/// Registers every handler of the app.
pub fn register(registry: &mut Registry) -> Result<(), RegistryError> {
    registry.before(persistence::BEFORE_CREATE, "Order", before_create)?;
    Ok(())
}
