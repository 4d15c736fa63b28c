//! Parsing the `Authorization` / `X-Vipps-Authorization` value Vipps sends:
//! `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64>`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::signature::{AUTHORIZATION_SCHEME, SIGNED_HEADERS};

/// Why an authorization value is not a Vipps HMAC signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedAuthorization {
    #[error("the value is not UTF-8 text")]
    NotText,
    #[error("the scheme is not HMAC-SHA256")]
    WrongScheme,
    #[error("SignedHeaders is missing")]
    MissingSignedHeaders,
    #[error("SignedHeaders is not x-ms-date;host;x-ms-content-sha256")]
    UnexpectedSignedHeaders,
    #[error("Signature is missing")]
    MissingSignature,
    #[error("Signature is not base64 of a 32-byte HMAC-SHA256")]
    BadSignatureEncoding,
}

/// A well-formed authorization value: the signature as sent and as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedAuthorization<'a> {
    pub signature_text: &'a str,
    pub signature: [u8; 32],
}

/// Parses an authorization value. The scheme and parameter names are matched
/// case-insensitively; the `SignedHeaders` list must be exactly Vipps's (in any case), because
/// a different list would mean a different string to sign.
pub(crate) fn parse_authorization(
    value: &[u8],
) -> Result<ParsedAuthorization<'_>, MalformedAuthorization> {
    let text = std::str::from_utf8(value)
        .map_err(|_| MalformedAuthorization::NotText)?
        .trim();
    let (scheme, parameters) = text
        .split_once(' ')
        .ok_or(MalformedAuthorization::WrongScheme)?;
    if !scheme.eq_ignore_ascii_case(AUTHORIZATION_SCHEME) {
        return Err(MalformedAuthorization::WrongScheme);
    }
    let mut signed_headers = None;
    let mut signature = None;
    for parameter in parameters.trim().split('&') {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("SignedHeaders") {
            signed_headers = Some(value.trim());
        } else if name.eq_ignore_ascii_case("Signature") {
            signature = Some(value.trim());
        }
    }
    let signed_headers = signed_headers.ok_or(MalformedAuthorization::MissingSignedHeaders)?;
    if !signed_headers.eq_ignore_ascii_case(SIGNED_HEADERS) {
        return Err(MalformedAuthorization::UnexpectedSignedHeaders);
    }
    let signature_text = signature
        .filter(|s| !s.is_empty())
        .ok_or(MalformedAuthorization::MissingSignature)?;
    // Room for any base64 text that could decode to 32 bytes; longer text cannot be a
    // signature and fails to decode into it.
    let mut decoded = [0u8; 36];
    let signature = BASE64
        .decode_slice(signature_text, &mut decoded)
        .ok()
        .filter(|length| *length == 32)
        .and_then(|_| decoded.first_chunk::<32>().copied())
        .ok_or(MalformedAuthorization::BadSignatureEncoding)?;
    Ok(ParsedAuthorization {
        signature_text,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "S7HJs6Kc6w1qPwUmmY66WWQL1YCcLo2DbXoR0VvN/Vk=";

    fn check(value: &str) -> Result<String, MalformedAuthorization> {
        parse_authorization(value.as_bytes()).map(|parsed| parsed.signature_text.to_owned())
    }

    #[test]
    fn accepts_the_vipps_form_and_harmless_variations() {
        let canonical =
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={SIG}");
        assert_eq!(check(&canonical), Ok(SIG.to_owned()));
        assert_eq!(check(&format!("  {canonical}  ")), Ok(SIG.to_owned()));
        assert_eq!(
            check(&format!(
                "hmac-sha256 signedheaders=X-MS-DATE;HOST;X-MS-CONTENT-SHA256&signature={SIG}"
            )),
            Ok(SIG.to_owned())
        );
        assert_eq!(
            check(&format!(
                "HMAC-SHA256 Signature={SIG}&SignedHeaders=x-ms-date;host;x-ms-content-sha256"
            )),
            Ok(SIG.to_owned())
        );
    }

    #[test]
    fn decodes_the_signature_bytes() {
        let value =
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={SIG}");
        let parsed = parse_authorization(value.as_bytes()).unwrap();
        assert_eq!(BASE64.encode(parsed.signature), SIG);
    }

    #[test]
    fn names_what_is_wrong() {
        use MalformedAuthorization::*;
        assert_eq!(parse_authorization(&[0xff, 0xfe]), Err(NotText));
        assert_eq!(check("Bearer abc"), Err(WrongScheme));
        assert_eq!(check("HMAC-SHA256"), Err(WrongScheme));
        assert_eq!(
            check(&format!("HMAC-SHA256 Signature={SIG}")),
            Err(MissingSignedHeaders)
        );
        assert_eq!(
            check(&format!(
                "HMAC-SHA256 SignedHeaders=host;x-ms-date;x-ms-content-sha256&Signature={SIG}"
            )),
            Err(UnexpectedSignedHeaders)
        );
        assert_eq!(
            check("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"),
            Err(MissingSignature)
        );
        assert_eq!(
            check("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="),
            Err(MissingSignature)
        );
        assert_eq!(
            check(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=not*base64"
            ),
            Err(BadSignatureEncoding)
        );
        assert_eq!(
            check("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA"),
            Err(BadSignatureEncoding)
        );
        // Base64 of 33 and of 64 bytes: valid encodings, not of an HMAC-SHA256.
        for length in [33, 64] {
            let long = BASE64.encode(vec![7u8; length]);
            assert_eq!(
                check(&format!(
                    "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={long}"
                )),
                Err(BadSignatureEncoding)
            );
        }
    }
}
