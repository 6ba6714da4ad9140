//! Message types and their attributes.

/// A message type: its attribute fields (what filters and ordering read).
///
/// Derive it with `#[derive(busbar::Message)]` beside serde's derives, marking attribute
/// fields with `#[busbar(attribute)]`. An attribute is named as serde names the field in JSON
/// (`#[serde(rename)]`, the container's `rename_all`), and its type is a string, number or
/// boolean ([`AttributeValue`]); a message has at most 10 of them (as on SNS).
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
/// #[serde(rename_all = "camelCase")]
/// pub struct OrderPlaced {
///     pub order_id: String,
///     #[busbar(attribute)]
///     pub customer_id: String,
///     #[busbar(attribute)]
///     pub express: bool,
/// }
///
/// use busbar::Message;
/// assert_eq!(OrderPlaced::ATTRIBUTES, ["customerId", "express"]);
/// let order = OrderPlaced { order_id: "o1".into(), customer_id: "c7".into(), express: true };
/// assert_eq!(
///     order.attributes(),
///     [("customerId", "c7".to_string()), ("express", "true".to_string())]
/// );
/// ```
pub trait Message: Send + Sync + 'static {
    /// The JSON names of the attribute fields, in declaration order.
    const ATTRIBUTES: &'static [&'static str];

    /// Each attribute that has a value (an `Option` that is `None` has none), as the string
    /// the broker compares: a string as it is, a number or boolean as JSON writes it.
    fn attributes(&self) -> Vec<(&'static str, String)>;
}

/// A type an attribute field may have: strings, numbers, booleans, and `Option`s of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a message attribute",
    label = "an attribute is a string, number or boolean field",
    note = "filters and ordering compare attribute values as strings; use a `String`, an integer, a float, a `bool`, or an `Option` of one"
)]
pub trait AttributeValue {
    /// The value as the broker compares it (none for an absent value).
    fn attribute_value(&self) -> Option<String>;
}

impl AttributeValue for String {
    fn attribute_value(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl AttributeValue for &str {
    fn attribute_value(&self) -> Option<String> {
        Some((*self).to_string())
    }
}

impl AttributeValue for std::borrow::Cow<'_, str> {
    fn attribute_value(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl AttributeValue for char {
    fn attribute_value(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl AttributeValue for bool {
    fn attribute_value(&self) -> Option<String> {
        Some(self.to_string())
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl AttributeValue for $t {
            fn attribute_value(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

integers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

macro_rules! floats {
    ($($t:ty),*) => {$(
        impl AttributeValue for $t {
            /// As JSON writes it (`1.5`, `1.0`); a NaN or an infinity (JSON has none) has none.
            fn attribute_value(&self) -> Option<String> {
                if self.is_finite() { serde_json::to_string(self).ok() } else { None }
            }
        }
    )*};
}

floats!(f32, f64);

impl<T: AttributeValue> AttributeValue for Option<T> {
    fn attribute_value(&self) -> Option<String> {
        self.as_ref().and_then(T::attribute_value)
    }
}

impl<T: AttributeValue + ?Sized> AttributeValue for Box<T> {
    fn attribute_value(&self) -> Option<String> {
        (**self).attribute_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_the_sidecar_reads_them_from_json() {
        // The sidecar takes a JSON string as it is and writes any other value as JSON.
        fn sidecar_reads(json: &str) -> String {
            match serde_json::from_str::<serde_json::Value>(json).unwrap() {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }
        }
        fn check<T: AttributeValue + serde::Serialize>(value: &T) {
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(value.attribute_value(), Some(sidecar_reads(&json)), "{json}");
        }
        check(&"eu".to_string());
        check(&"eu");
        check(&'x');
        check(&3u8);
        check(&-7i64);
        check(&u64::MAX);
        check(&1.5f64);
        check(&1.0f64);
        check(&1e300f64);
        check(&true);
        check(&0.1f32);
        check(&Some(2u16));
        assert_eq!(None::<String>.attribute_value(), None);
        assert_eq!(f64::NAN.attribute_value(), None);
    }
}
