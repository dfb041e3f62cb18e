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

/// The profile's deployment region and the AWS configuration in it, for commands that change
/// the stack.
///
/// # Errors
/// When the profile names no region, directly or through its Quilt stack's ARN.
pub async fn deployment(profile: &Profile) -> anyhow::Result<(String, aws_config::SdkConfig)> {
    let region = region_of(profile)
        .ok_or_else(|| anyhow::anyhow!("the profile names no region: set stack.region"))?;
    Ok((region.clone(), config(Some(region)).await))
}

/// The profile's deployment region: its stack's, else the Quilt stack's.
pub fn region_of(profile: &Profile) -> Option<String> {
    profile.stack.region.clone().or_else(|| {
        quilt::arn_region(&profile.quilt.stack_arn)
            .ok()
            .map(str::to_owned)
    })
}

/// What AWS said about a failed call: the service's message; else the SDK's error chain and,
/// when the answer could not be read, the start of what was answered.
pub fn message<E, R>(error: &aws_sdk_cloudformation::error::SdkError<E, R>) -> String
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + Answered,
{
    use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
    if let Some(message) = error.message() {
        return message.to_owned();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(answer) = error.raw_response().and_then(Answered::excerpt) {
        text.push_str(&format!(" (the service answered: {answer})"));
    }
    text
}

/// A raw HTTP answer whose body can be shown.
pub trait Answered {
    /// The status and the body's first 300 characters, when there is a body.
    fn excerpt(&self) -> Option<String>;
}

impl Answered for aws_sdk_cloudformation::config::http::HttpResponse {
    fn excerpt(&self) -> Option<String> {
        let body = std::str::from_utf8(self.body().bytes()?).ok()?.trim();
        (!body.is_empty()).then(|| {
            format!(
                "HTTP {}: {}",
                self.status().as_u16(),
                body.chars().take(300).collect::<String>()
            )
        })
    }
}
