//! The AWS configuration every command uses: the standard chain (environment, profile files,
//! instance roles; `AWS_ENDPOINT_URL` too), in the deployment's region.

use crate::profile::Profile;
use crate::quilt;

/// The standard AWS configuration, in `region` when given.
pub async fn config(region: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// The profile's deployment region: its stack's, else the Quilt stack's.
pub fn region_of(profile: &Profile) -> Option<String> {
    profile.stack.region.clone().or_else(|| {
        quilt::arn_region(&profile.quilt.stack_arn)
            .ok()
            .map(str::to_owned)
    })
}
