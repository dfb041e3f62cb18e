//! What an operator chooses when emitting the template: environments, network and allowlist.
//! Each is fixed in the template text; everything that varies per deploy is a parameter.

use std::net::IpAddr;
use std::str::FromStr;

/// Why the options cannot make a template.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    /// An environment name is not usable.
    #[error(
        "environment {0:?}: use 1–16 lowercase letters and digits, starting with a letter (it names the API stage and prefixes logical ids)"
    )]
    EnvironmentName(String),
    /// The same environment twice.
    #[error("environment {0:?} is listed twice")]
    DuplicateEnvironment(String),
    /// No environment.
    #[error("name at least one environment")]
    NoEnvironment,
    /// More environments than listener ports are set aside for.
    #[error("at most {MAX_ENVIRONMENTS} environments fit one stack")]
    TooManyEnvironments,
    /// Not a CIDR block.
    #[error("allowlist entry {0:?} is not an IP address or CIDR block (a.b.c.d/n)")]
    Cidr(String),
    /// An existing VPC without two private subnets.
    #[error(
        "an existing VPC needs at least two private subnets, in different zones (--private-subnet-ids A,B)"
    )]
    Subnets,
    /// A malformed id.
    #[error("{what} {value:?} is not a valid id (expected {prefix}-…)")]
    Id {
        /// What the id is.
        what: &'static str,
        /// The value given.
        value: String,
        /// Its expected prefix.
        prefix: &'static str,
    },
    /// The options recorded in a deployed template cannot be read back.
    #[error("the template's {METADATA_KEY} metadata is not what this version writes: {0}")]
    Metadata(String),
}

/// The template metadata key that records the options, so a deploy rebuilds the template the
/// stack runs from without asking for them again.
pub const METADATA_KEY: &str = "BenchlingWebhook";

/// Most environments in one stack: each takes one listener port on the shared load balancer.
pub const MAX_ENVIRONMENTS: usize = 10;

/// An environment's name: the API stage, the prefix of its logical ids (`prod` → `Prod…`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// The name as given (`prod`): the API stage.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The logical-id prefix (`Prod`).
    pub fn title(&self) -> String {
        let mut chars = self.0.chars();
        chars
            .next()
            .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }
}

impl FromStr for EnvironmentName {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=16).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(OptionsError::EnvironmentName(s.to_owned()))
        }
    }
}

impl serde::Serialize for EnvironmentName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EnvironmentName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// An allowlisted IP address or CIDR block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cidr(String);

impl Cidr {
    /// The block, as written in the policy (`203.0.113.0/24`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Cidr {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || OptionsError::Cidr(s.to_owned());
        let s = s.trim();
        let (address, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        match prefix {
            None => Ok(Self(address.to_string())),
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(bits) if bits <= max && !prefix.starts_with('+') => {
                    Ok(Self(format!("{address}/{bits}")))
                }
                _ => Err(invalid()),
            },
        }
    }
}

/// Checks an AWS id's prefix and characters (`vpc-0abc…`, `subnet-…`).
fn aws_id(what: &'static str, prefix: &'static str, value: &str) -> Result<String, OptionsError> {
    let valid = value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| {
            (8..=17).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_hexdigit())
        });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(OptionsError::Id {
            what,
            value: value.to_owned(),
            prefix,
        })
    }
}

/// Where the services run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// A new VPC: two zones, public subnets with NAT gateways, private subnets for the tasks.
    New,
    /// An existing VPC's private subnets (with a route to a NAT or the AWS endpoints).
    Existing {
        /// The VPC.
        vpc_id: String,
        /// At least two private subnets, in different zones.
        private_subnet_ids: Vec<String>,
    },
}

impl Network {
    /// An existing VPC, checked.
    ///
    /// # Errors
    /// A malformed id, or fewer than two subnets.
    pub fn existing(vpc_id: &str, private_subnet_ids: &[String]) -> Result<Self, OptionsError> {
        let vpc_id = aws_id("VPC id", "vpc", vpc_id)?;
        let subnets = private_subnet_ids
            .iter()
            .map(|id| aws_id("subnet id", "subnet", id.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut unique = subnets.clone();
        unique.sort();
        unique.dedup();
        if unique.len() < 2 {
            return Err(OptionsError::Subnets);
        }
        Ok(Self::Existing {
            vpc_id,
            private_subnet_ids: subnets,
        })
    }
}

/// Everything the template is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackOptions {
    environments: Vec<EnvironmentName>,
    network: Network,
    allow: Vec<Cidr>,
}

impl StackOptions {
    /// Checked options. Environment order matters: each keeps the load-balancer port of its
    /// position, so add new environments at the end.
    ///
    /// # Errors
    /// No environment, too many, or one listed twice.
    pub fn new(
        environments: Vec<EnvironmentName>,
        network: Network,
        allow: Vec<Cidr>,
    ) -> Result<Self, OptionsError> {
        if environments.is_empty() {
            return Err(OptionsError::NoEnvironment);
        }
        if environments.len() > MAX_ENVIRONMENTS {
            return Err(OptionsError::TooManyEnvironments);
        }
        for (i, env) in environments.iter().enumerate() {
            if environments[..i].contains(env) {
                return Err(OptionsError::DuplicateEnvironment(env.as_str().to_owned()));
            }
        }
        Ok(Self {
            environments,
            network,
            allow,
        })
    }

    /// The environments, in order.
    pub fn environments(&self) -> &[EnvironmentName] {
        &self.environments
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Who may call the API; empty: anyone (Benchling's addresses are not fixed).
    pub fn allow(&self) -> &[Cidr] {
        &self.allow
    }
}

/// [`StackOptions`] as template metadata records them.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Recorded {
    environments: Vec<EnvironmentName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    private_subnet_ids: Vec<String>,
    #[serde(default)]
    allow_cidrs: Vec<String>,
}

impl StackOptions {
    /// The options as the template's [`METADATA_KEY`] metadata records them.
    pub fn to_metadata(&self) -> serde_json::Value {
        let (vpc_id, private_subnet_ids) = match &self.network {
            Network::New => (None, Vec::new()),
            Network::Existing {
                vpc_id,
                private_subnet_ids,
            } => (Some(vpc_id.clone()), private_subnet_ids.clone()),
        };
        let recorded = Recorded {
            environments: self.environments.clone(),
            vpc_id,
            private_subnet_ids,
            allow_cidrs: self.allow.iter().map(|c| c.0.clone()).collect(),
        };
        // Strings and arrays of strings always serialise.
        serde_json::to_value(recorded).expect("options serialise")
    }

    /// The options a template's whole `Metadata` section records; `None` when it records none
    /// (a template from before the record, or not this project's).
    ///
    /// # Errors
    /// A record that does not read back as valid options.
    pub fn from_metadata(metadata: &serde_json::Value) -> Result<Option<Self>, OptionsError> {
        let Some(recorded) = metadata.get(METADATA_KEY) else {
            return Ok(None);
        };
        let recorded: Recorded = serde_json::from_value(recorded.clone())
            .map_err(|e| OptionsError::Metadata(e.to_string()))?;
        let network = match recorded.vpc_id {
            Some(vpc_id) => Network::existing(&vpc_id, &recorded.private_subnet_ids)?,
            None => Network::New,
        };
        let allow = recorded
            .allow_cidrs
            .iter()
            .map(|c| c.parse())
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(recorded.environments, network, allow).map(Some)
    }
}

impl Default for StackOptions {
    /// One environment, `prod`, in a new VPC, open to any caller.
    fn default() -> Self {
        Self {
            environments: vec![EnvironmentName("prod".to_owned())],
            network: Network::New,
            allow: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_back_from_the_template_metadata() {
        let options = StackOptions::new(
            vec!["prod".parse().unwrap(), "dev".parse().unwrap()],
            Network::existing(
                "vpc-0123456789abcdef0",
                &["subnet-01234567".to_owned(), "subnet-89abcdef".to_owned()],
            )
            .unwrap(),
            vec!["203.0.113.0/24".parse().unwrap()],
        )
        .unwrap();
        let template = crate::build(&options).to_json();
        let metadata = &template["Metadata"];
        assert_eq!(
            StackOptions::from_metadata(metadata).unwrap(),
            Some(options)
        );
        let default = crate::build(&StackOptions::default()).to_json();
        assert_eq!(
            StackOptions::from_metadata(&default["Metadata"]).unwrap(),
            Some(StackOptions::default())
        );
        assert_eq!(
            StackOptions::from_metadata(&serde_json::json!({})).unwrap(),
            None
        );
        let damaged = serde_json::json!({METADATA_KEY: {"environments": ["Prod"]}});
        assert!(matches!(
            StackOptions::from_metadata(&damaged),
            Err(OptionsError::Metadata(_))
        ));
    }

    #[test]
    fn environment_names() {
        for good in ["prod", "dev", "qa2", "a"] {
            assert_eq!(good.parse::<EnvironmentName>().unwrap().as_str(), good);
        }
        for bad in ["", "Prod", "2dev", "dev-1", "dev_1", "abcdefghijklmnopq"] {
            assert!(bad.parse::<EnvironmentName>().is_err(), "{bad}");
        }
        assert_eq!("prod".parse::<EnvironmentName>().unwrap().title(), "Prod");
    }

    #[test]
    fn cidrs() {
        assert_eq!(
            "203.0.113.0/24".parse::<Cidr>().unwrap().as_str(),
            "203.0.113.0/24"
        );
        assert_eq!(
            " 198.51.100.7 ".parse::<Cidr>().unwrap().as_str(),
            "198.51.100.7"
        );
        assert_eq!(
            "2001:db8::/32".parse::<Cidr>().unwrap().as_str(),
            "2001:db8::/32"
        );
        for bad in [
            "10.0.0.0/33",
            "256.0.0.1",
            "10.0.0/8",
            "10.0.0.0/+8",
            "x",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn existing_vpcs_need_two_subnets() {
        let two = vec![
            "subnet-0123456789abcdef0".to_owned(),
            "subnet-0fedcba987654321".to_owned(),
        ];
        assert!(Network::existing("vpc-0123456789abcdef0", &two).is_ok());
        assert_eq!(
            Network::existing("vpc-0123456789abcdef0", &two[..1]),
            Err(OptionsError::Subnets)
        );
        let same = vec![two[0].clone(), two[0].clone()];
        assert_eq!(
            Network::existing("vpc-0123456789abcdef0", &same),
            Err(OptionsError::Subnets)
        );
        assert!(matches!(
            Network::existing("vpc-xyz", &two),
            Err(OptionsError::Id { .. })
        ));
        assert!(matches!(
            Network::existing(
                "vpc-0123456789abcdef0",
                &["sg-0123456789abcdef0".to_owned(), two[0].clone()]
            ),
            Err(OptionsError::Id { .. })
        ));
    }

    #[test]
    fn environments_are_checked() {
        let prod: EnvironmentName = "prod".parse().unwrap();
        assert_eq!(
            StackOptions::new(vec![], Network::New, vec![]),
            Err(OptionsError::NoEnvironment)
        );
        assert_eq!(
            StackOptions::new(vec![prod.clone(), prod], Network::New, vec![]),
            Err(OptionsError::DuplicateEnvironment("prod".to_owned()))
        );
        let many = (0..=MAX_ENVIRONMENTS)
            .map(|i| format!("e{i}").parse().unwrap())
            .collect();
        assert_eq!(
            StackOptions::new(many, Network::New, vec![]),
            Err(OptionsError::TooManyEnvironments)
        );
    }
}
