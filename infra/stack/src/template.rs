//! A CloudFormation template as typed values: parameters, conditions, resources and outputs,
//! with the intrinsic functions as one expression type. Serialising gives the template's JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap as _, Serializer};
use serde_json::Value;

/// A value in a template: a literal or an intrinsic function.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal string.
    Str(String),
    /// A literal number.
    Num(i64),
    /// A literal boolean.
    Bool(bool),
    /// A list of values.
    List(Vec<Expr>),
    /// `Ref`: a parameter's value or a resource's primary id.
    Ref(String),
    /// `Fn::GetAtt`: a resource's attribute.
    GetAtt(String, String),
    /// `Fn::Sub` over the template's names (`${Param}`, `${Resource.Attr}`, `${AWS::Region}`).
    Sub(String),
    /// `Fn::Sub` with local variables.
    SubWith(String, Vec<(String, Expr)>),
    /// `Fn::Join`.
    Join(String, Vec<Expr>),
    /// `Fn::Select`.
    Select(usize, Box<Expr>),
    /// `Fn::Split`.
    Split(String, Box<Expr>),
    /// `Fn::If` on a named condition.
    If(String, Box<Expr>, Box<Expr>),
    /// `Fn::GetAZs` of the stack's region.
    Azs,
}

impl Expr {
    /// `Ref` of a name.
    pub fn r#ref(name: impl Into<String>) -> Self {
        Self::Ref(name.into())
    }

    /// `Fn::GetAtt` of a resource's attribute.
    pub fn att(resource: impl Into<String>, attribute: impl Into<String>) -> Self {
        Self::GetAtt(resource.into(), attribute.into())
    }

    /// `Fn::Sub` of a pattern.
    pub fn sub(pattern: impl Into<String>) -> Self {
        Self::Sub(pattern.into())
    }

    /// `Fn::Sub` of a pattern with local variables.
    pub fn sub_with(pattern: impl Into<String>, vars: Vec<(&str, Expr)>) -> Self {
        Self::SubWith(
            pattern.into(),
            vars.into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    }

    /// `Fn::Join` with a delimiter.
    pub fn join(delimiter: impl Into<String>, parts: Vec<Expr>) -> Self {
        Self::Join(delimiter.into(), parts)
    }

    /// `Fn::Select` of the `index`th part of `Fn::Split`.
    pub fn split_select(delimiter: impl Into<String>, index: usize, value: Expr) -> Self {
        Self::Select(
            index,
            Box::new(Self::Split(delimiter.into(), Box::new(value))),
        )
    }

    /// `Fn::If` on a named condition.
    pub fn when(condition: impl Into<String>, then: Expr, otherwise: Expr) -> Self {
        Self::If(condition.into(), Box::new(then), Box::new(otherwise))
    }

    /// `AWS::NoValue`: drops the property it stands for.
    pub fn no_value() -> Self {
        Self::r#ref("AWS::NoValue")
    }

    /// The `index`th availability zone of the region.
    pub fn az(index: usize) -> Self {
        Self::Select(index, Box::new(Self::Azs))
    }
}

impl From<&str> for Expr {
    fn from(value: &str) -> Self {
        Self::Str(value.to_owned())
    }
}

impl From<String> for Expr {
    fn from(value: String) -> Self {
        Self::Str(value)
    }
}

impl From<i64> for Expr {
    fn from(value: i64) -> Self {
        Self::Num(value)
    }
}

impl From<bool> for Expr {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl<T: Into<Expr>> From<Vec<T>> for Expr {
    fn from(values: Vec<T>) -> Self {
        Self::List(values.into_iter().map(Into::into).collect())
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn one<S: Serializer, V: Serialize + ?Sized>(
            serializer: S,
            key: &str,
            value: &V,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(key, value)?;
            map.end()
        }
        match self {
            Self::Str(s) => serializer.serialize_str(s),
            Self::Num(n) => serializer.serialize_i64(*n),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::List(items) => items.serialize(serializer),
            Self::Ref(name) => one(serializer, "Ref", name),
            Self::GetAtt(resource, attribute) => {
                one(serializer, "Fn::GetAtt", &[resource, attribute])
            }
            Self::Sub(pattern) => one(serializer, "Fn::Sub", pattern),
            Self::SubWith(pattern, vars) => {
                let vars: BTreeMap<&str, &Expr> =
                    vars.iter().map(|(k, v)| (k.as_str(), v)).collect();
                one(serializer, "Fn::Sub", &(pattern, vars))
            }
            Self::Join(delimiter, parts) => one(serializer, "Fn::Join", &(delimiter, parts)),
            Self::Select(index, list) => one(serializer, "Fn::Select", &(index, list)),
            Self::Split(delimiter, value) => one(serializer, "Fn::Split", &(delimiter, value)),
            Self::If(condition, then, otherwise) => {
                one(serializer, "Fn::If", &(condition, then, otherwise))
            }
            Self::Azs => one(serializer, "Fn::GetAZs", ""),
        }
    }
}

/// A condition: an expression of `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `Fn::Equals`.
    Equals(Expr, Expr),
    /// `Fn::Not`.
    Not(Box<Condition>),
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Self::Equals(a, b) => map.serialize_entry("Fn::Equals", &(a, b))?,
            Self::Not(inner) => map.serialize_entry("Fn::Not", &[inner])?,
        }
        map.end()
    }
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ParameterType {
    /// A string.
    String,
    /// A number.
    Number,
}

/// A template parameter.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    /// Its type.
    #[serde(rename = "Type")]
    pub kind: ParameterType,
    /// What it is for, shown by the console and the CLI.
    pub description: String,
    /// The value when none is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The only values accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
    /// A regular expression a string value must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    /// The error shown when the pattern or values reject a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint_description: Option<String>,
    /// The least number accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_value: Option<i64>,
}

impl Parameter {
    /// A string parameter.
    pub fn string(description: impl Into<String>) -> Self {
        Self {
            kind: ParameterType::String,
            description: description.into(),
            default: None,
            allowed_values: Vec::new(),
            allowed_pattern: None,
            constraint_description: None,
            min_value: None,
        }
    }

    /// A number parameter with a default and a least value.
    pub fn number(description: impl Into<String>, default: i64, min: i64) -> Self {
        Self {
            kind: ParameterType::Number,
            default: Some(default.to_string()),
            min_value: Some(min),
            ..Self::string(description)
        }
    }

    /// With a default value.
    pub fn default(mut self, value: impl Into<String>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Accepting only these values.
    pub fn allowed(mut self, values: &[&str]) -> Self {
        self.allowed_values = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Accepting only values matching `pattern`, with the error shown otherwise.
    pub fn pattern(mut self, pattern: &str, constraint: &str) -> Self {
        self.allowed_pattern = Some(pattern.to_owned());
        self.constraint_description = Some(constraint.to_owned());
        self
    }
}

/// The properties of one resource type.
pub trait Properties: Serialize {
    /// The CloudFormation type, e.g. `AWS::SQS::Queue`.
    const TYPE: &'static str;
}

/// What happens to a resource's physical object when the stack deletes or replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Policy {
    /// Delete it.
    Delete,
    /// Keep it.
    Retain,
}

/// One resource of the template.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    /// The resource type.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// Created only when this condition holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Resources created before this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Kept or deleted with the stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<Policy>,
    /// Kept or deleted when replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_replace_policy: Option<Policy>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Its properties.
    pub properties: Value,
}

impl Resource {
    /// A resource from typed properties.
    pub fn new<P: Properties>(properties: &P) -> Self {
        Self {
            kind: P::TYPE,
            condition: None,
            depends_on: Vec::new(),
            deletion_policy: None,
            update_replace_policy: None,
            metadata: None,
            // Serialising our own property structs cannot fail: every map key is a string.
            properties: serde_json::to_value(properties).expect("properties serialise"),
        }
    }

    /// Created after these resources.
    pub fn depends_on(mut self, ids: &[&str]) -> Self {
        self.depends_on
            .extend(ids.iter().map(|id| (*id).to_owned()));
        self
    }

    /// Created only when the condition holds.
    pub fn when(mut self, condition: &str) -> Self {
        self.condition = Some(condition.to_owned());
        self
    }

    /// Kept when the stack deletes or replaces it.
    pub fn retain(mut self) -> Self {
        self.deletion_policy = Some(Policy::Retain);
        self.update_replace_policy = Some(Policy::Retain);
        self
    }

    /// Deleted with the stack, also when replaced.
    pub fn delete(mut self) -> Self {
        self.deletion_policy = Some(Policy::Delete);
        self.update_replace_policy = Some(Policy::Delete);
        self
    }

    /// With metadata.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// A template output.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// What it is.
    pub description: String,
    /// Its value.
    pub value: Expr,
}

/// A whole template. Maps are ordered by name, so the same input always gives the same text.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Template {
    /// The template format version.
    #[serde(rename = "AWSTemplateFormatVersion")]
    pub format_version: &'static str,
    /// What the stack is.
    pub description: String,
    /// How the console groups the parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Its parameters.
    pub parameters: BTreeMap<String, Parameter>,
    /// Its conditions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, Condition>,
    /// Its resources.
    pub resources: BTreeMap<String, Resource>,
    /// Its outputs.
    pub outputs: BTreeMap<String, Output>,
}

impl Template {
    /// An empty template.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            format_version: "2010-09-09",
            description: description.into(),
            ..Self::default()
        }
    }

    /// Adds a parameter; returns a `Ref` to it.
    pub fn parameter(&mut self, name: &str, parameter: Parameter) -> Expr {
        self.insert_unique("parameter", name, |t| &mut t.parameters, parameter);
        Expr::r#ref(name)
    }

    /// Adds a condition.
    pub fn condition(&mut self, name: &str, condition: Condition) {
        self.insert_unique("condition", name, |t| &mut t.conditions, condition);
    }

    /// Adds a resource; returns a `Ref` to it.
    pub fn resource(&mut self, id: &str, resource: Resource) -> Expr {
        self.insert_unique("resource", id, |t| &mut t.resources, resource);
        Expr::r#ref(id)
    }

    /// Adds an output.
    pub fn output(&mut self, name: &str, description: &str, value: Expr) {
        let output = Output {
            description: description.to_owned(),
            value,
        };
        self.insert_unique("output", name, |t| &mut t.outputs, output);
    }

    /// The template as JSON.
    pub fn to_json(&self) -> Value {
        // Every map key is a string and every value serialisable, so this cannot fail.
        serde_json::to_value(self).expect("a template serialises")
    }

    fn insert_unique<T>(
        &mut self,
        what: &str,
        name: &str,
        map: impl FnOnce(&mut Self) -> &mut BTreeMap<String, T>,
        value: T,
    ) {
        let previous = map(self).insert(name.to_owned(), value);
        // Two builders claiming one logical id is a bug in this crate, not an input error.
        assert!(previous.is_none(), "{what} {name} defined twice");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn intrinsics_serialise_as_cloudformation_expects() {
        let cases = [
            (Expr::r#ref("Vpc"), json!({"Ref": "Vpc"})),
            (
                Expr::att("Lb", "DNSName"),
                json!({"Fn::GetAtt": ["Lb", "DNSName"]}),
            ),
            (
                Expr::sub("${AWS::Region}"),
                json!({"Fn::Sub": "${AWS::Region}"}),
            ),
            (
                Expr::sub_with("${A}-x", vec![("A", Expr::r#ref("P"))]),
                json!({"Fn::Sub": ["${A}-x", {"A": {"Ref": "P"}}]}),
            ),
            (
                Expr::split_select("/", 2, Expr::r#ref("Url")),
                json!({"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "Url"}]}]}),
            ),
            (
                Expr::when("C", "a".into(), Expr::no_value()),
                json!({"Fn::If": ["C", "a", {"Ref": "AWS::NoValue"}]}),
            ),
            (Expr::az(1), json!({"Fn::Select": [1, {"Fn::GetAZs": ""}]})),
            (
                Expr::join(":", vec!["a".into(), Expr::Num(1)]),
                json!({"Fn::Join": [":", ["a", 1]]}),
            ),
        ];
        for (expr, expected) in cases {
            assert_eq!(serde_json::to_value(&expr).unwrap(), expected, "{expr:?}");
        }
    }

    #[test]
    fn conditions_serialise() {
        let c = Condition::Not(Box::new(Condition::Equals(Expr::r#ref("P"), "".into())));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]})
        );
    }

    #[test]
    #[should_panic(expected = "resource Queue defined twice")]
    fn a_logical_id_is_defined_once() {
        #[derive(Serialize)]
        struct Empty {}
        impl Properties for Empty {
            const TYPE: &'static str = "AWS::SQS::Queue";
        }
        let mut template = Template::new("t");
        template.resource("Queue", Resource::new(&Empty {}));
        template.resource("Queue", Resource::new(&Empty {}));
    }
}
