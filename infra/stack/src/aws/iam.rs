//! IAM roles and policy documents.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::template::{Expr, Properties};

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Effect {
    /// Allow.
    Allow,
}

/// Who a statement is about.
#[derive(Clone, Debug, Serialize)]
pub enum Principal {
    /// An AWS service (`ecs-tasks.amazonaws.com`).
    Service(Vec<String>),
    /// An AWS principal; `*` for anyone.
    #[serde(rename = "AWS")]
    Aws(String),
}

/// A statement's condition: operator → key → values.
pub type ConditionBlock = BTreeMap<&'static str, BTreeMap<&'static str, Expr>>;

/// One statement of a policy.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    /// Names the statement, so a reader of the policy sees why it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Allow.
    pub effect: Effect,
    /// For resource policies and trust policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// The actions.
    pub action: Vec<String>,
    /// The resources, when the policy is not a trust policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Expr>,
    /// When it applies.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: ConditionBlock,
}

impl Statement {
    /// Allows `actions` on `resources`.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<Expr>) -> Self {
        Self {
            sid: Some(sid.to_owned()),
            effect: Effect::Allow,
            principal: None,
            action: actions.iter().map(|a| (*a).to_owned()).collect(),
            resource: resources,
            condition: BTreeMap::new(),
        }
    }

    /// For `principal`.
    pub fn principal(mut self, principal: Principal) -> Self {
        self.principal = Some(principal);
        self
    }

    /// Only when `key` matches `value` under `operator`.
    pub fn condition(mut self, operator: &'static str, key: &'static str, value: Expr) -> Self {
        self.condition
            .entry(operator)
            .or_default()
            .insert(key, value);
        self
    }
}

/// A policy document.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    /// `2012-10-17`.
    pub version: &'static str,
    /// Its statements. An `Fn::If` may stand for one that exists only under a condition.
    pub statement: Vec<StatementOrIf>,
}

/// A statement, or one that exists only under a condition.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum StatementOrIf {
    /// Always there.
    Always(Statement),
    /// There when the condition holds (`Fn::If [condition, statement, AWS::NoValue]`).
    When(WhenStatement),
}

/// `{"Fn::If": [condition, statement, {"Ref": "AWS::NoValue"}]}`.
#[derive(Clone, Debug, Serialize)]
pub struct WhenStatement {
    #[serde(rename = "Fn::If")]
    branches: (String, Statement, Expr),
}

impl PolicyDocument {
    /// A document of statements.
    pub fn new(statements: Vec<Statement>) -> Self {
        Self {
            version: "2012-10-17",
            statement: statements.into_iter().map(StatementOrIf::Always).collect(),
        }
    }

    /// The trust policy letting `service` assume a role.
    pub fn trust(service: &str) -> Self {
        Self::new(vec![Statement {
            sid: None,
            effect: Effect::Allow,
            principal: Some(Principal::Service(vec![service.to_owned()])),
            action: vec!["sts:AssumeRole".to_owned()],
            resource: Vec::new(),
            condition: BTreeMap::new(),
        }])
    }

    /// Adds a statement that exists only when `condition` holds.
    pub fn with_conditional(mut self, condition: &str, statement: Statement) -> Self {
        self.statement.push(StatementOrIf::When(WhenStatement {
            branches: (condition.to_owned(), statement, Expr::no_value()),
        }));
        self
    }
}

/// An inline policy of a role.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    /// Its name.
    pub policy_name: String,
    /// Its document.
    pub policy_document: PolicyDocument,
}

/// `AWS::IAM::Role`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    /// What it is for.
    pub description: String,
    /// Who may assume it.
    pub assume_role_policy_document: PolicyDocument,
    /// AWS managed policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managed_policy_arns: Vec<Expr>,
    /// Its own policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<InlinePolicy>,
}

impl Properties for Role {
    const TYPE: &'static str = "AWS::IAM::Role";
}
