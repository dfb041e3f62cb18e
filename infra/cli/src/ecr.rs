//! The image's ECR repository: its URI as the stack's `ImageRepository` parameter takes it, and
//! whether a tag is in it.

use aws_sdk_ecr::types::ImageIdentifier;

/// `{account}.dkr.ecr.{region}.amazonaws.com/{name}`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// The registry: the owning account.
    pub account: String,
    /// The registry's region.
    pub region: String,
    /// The repository name (may hold `/`).
    pub name: String,
}

impl Repository {
    /// Parses a repository URI without a tag; `None` when it is not one.
    pub fn parse(uri: &str) -> Option<Self> {
        let (host, name) = uri.split_once('/')?;
        let mut labels = host.split('.');
        let account = labels.next()?;
        let (dkr, ecr, region) = (labels.next()?, labels.next()?, labels.next()?);
        let domain: Vec<&str> = labels.collect();
        let name_ok = !name.is_empty()
            && name.split(['/', '.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        let ok = account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && dkr == "dkr"
            && ecr == "ecr"
            && !region.is_empty()
            && domain.first() == Some(&"amazonaws")
            && name_ok;
        ok.then(|| Self {
            account: account.to_owned(),
            region: region.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// Whether `tag` is in `repository`; an error says what ECR answered.
///
/// # Errors
/// When the repository does not exist or cannot be read.
pub async fn has_tag(
    ecr: &aws_sdk_ecr::Client,
    repository: &Repository,
    tag: &str,
) -> Result<bool, String> {
    let found = ecr
        .describe_images()
        .registry_id(&repository.account)
        .repository_name(&repository.name)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    match found {
        Ok(found) => Ok(!found.image_details().is_empty()),
        Err(e) => {
            use aws_sdk_ecr::error::ProvideErrorMetadata as _;
            match e.code() {
                Some("ImageNotFoundException") => Ok(false),
                Some("RepositoryNotFoundException") => Err(format!(
                    "the repository {} does not exist in account {} ({})",
                    repository.name, repository.account, repository.region
                )),
                _ => Err(crate::aws::message(&e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_uris() {
        let parsed = Repository::parse(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/quilt/benchling-webhook",
        )
        .unwrap();
        assert_eq!(parsed.account, "123456789012");
        assert_eq!(parsed.region, "us-east-1");
        assert_eq!(parsed.name, "quilt/benchling-webhook");
        assert!(Repository::parse("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/bw").is_some());
        for bad in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/bw:0.1.0",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/",
            "12345.dkr.ecr.us-east-1.amazonaws.com/bw",
            "public.ecr.aws/quilt/bw",
            "123456789012.dkr.ecr.us-east-1.example.com/bw",
            "bw",
        ] {
            assert_eq!(Repository::parse(bad), None, "{bad}");
        }
    }
}
