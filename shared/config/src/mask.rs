//! Masking for values shown to operators (`/config`, logs): account ids, ARNs and URL
//! credentials are never shown in full.

/// Replaces every run of exactly 12 digits (an AWS account id) with `***`.
pub fn mask_account_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 12 {
                out.push_str("***");
            } else {
                out.push_str(&text[start..i]);
            }
        } else {
            let ch = text[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Masks an ARN's account field (`arn:aws:sqs:us-east-1:***:name`), and any account id
/// elsewhere in it; other text is masked as a plain value.
pub fn mask_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" {
        let account = if parts[4].is_empty() { "" } else { "***" };
        let masked = format!(
            "arn:{}:{}:{}:{}:{}",
            parts[1], parts[2], parts[3], account, parts[5]
        );
        mask_account_ids(&masked)
    } else {
        mask_account_ids(arn)
    }
}

/// Masks a URL: drops user info and the query (pre-signed URLs carry credentials there)
/// and masks account ids in the path.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.set_query(None);
            parsed.set_fragment(None);
            mask_account_ids(parsed.as_str())
        }
        Err(_) => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_account_in_arns() {
        assert_eq!(
            mask_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:benchling-AbCdEf"),
            "arn:aws:secretsmanager:us-east-1:***:secret:benchling-AbCdEf"
        );
        assert_eq!(mask_arn("plain-name"), "plain-name");
    }

    #[test]
    fn masks_queue_urls_and_credentials() {
        assert_eq!(
            mask_url("https://sqs.us-east-1.amazonaws.com/123456789012/export.fifo"),
            "https://sqs.us-east-1.amazonaws.com/***/export.fifo"
        );
        assert_eq!(
            mask_url("https://user:pw@host.example/path?X-Amz-Signature=abc"),
            "https://host.example/path"
        );
        assert_eq!(mask_url("not a url"), "***");
    }

    #[test]
    fn leaves_other_numbers_alone() {
        assert_eq!(
            mask_account_ids("port 8080, id 1234567890123"),
            "port 8080, id 1234567890123"
        );
        assert_eq!(mask_account_ids("é123456789012é"), "é***é");
    }
}
