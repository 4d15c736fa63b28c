use super::*;

/// Parses with `parse` and with serde, and checks both agree with `expect_ok`.
fn check_text<T>(parse: fn(&str) -> Result<T, IdError>, input: &str, expect_ok: bool)
where
    T: std::fmt::Display + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let parsed = parse(input);
    assert_eq!(parsed.is_ok(), expect_ok, "parse({input:?}) = {parsed:?}");
    if let Ok(value) = &parsed {
        assert_eq!(value.to_string(), input, "Display round-trips");
    }
    let json = serde_json::to_string(input).unwrap();
    let deserialized = serde_json::from_str::<T>(&json);
    assert_eq!(
        deserialized.is_ok(),
        expect_ok,
        "serde agrees with parse for {input:?}"
    );
}

#[test]
fn provider_id_is_lowercase_and_bounded() {
    for ok in ["vipps-test", "a", "0", "shop_1-no", &"a".repeat(63)] {
        check_text(ProviderId::parse, ok, true);
    }
    for bad in [
        "",
        "Vipps",
        "-leading",
        "_leading",
        "a.b",
        "a:b",
        "a/b",
        "æøå",
        &"a".repeat(64),
    ] {
        check_text(ProviderId::parse, bad, false);
    }
}

#[test]
fn msn_is_four_to_ten_digits() {
    for ok in ["1234", "123456", "0012345678"] {
        check_text(Msn::parse, ok, true);
    }
    for bad in ["", "123", "12345678901", "12a456", " 123456", "١٢٣٤"] {
        check_text(Msn::parse, bad, false);
    }
}

#[test]
fn reference_follows_vipps_rule() {
    for ok in ["acme-order-1001", "ABCDEFGH", &"a".repeat(64)] {
        check_text(Reference::parse, ok, true);
    }
    for bad in [
        "short",
        "acme_order_1001",
        "acme order 1001",
        &"a".repeat(65),
        "acme.order",
    ] {
        check_text(Reference::parse, bad, false);
    }
}

#[test]
fn psp_reference_is_printable_and_bounded() {
    for ok in ["9f0c2a4e-6b1d-4c2a-8f3e-5d7b9a1c0e22", "123", "a:b/c"] {
        check_text(PspReference::parse, ok, true);
    }
    for bad in ["", "a b", "a\nb", &"x".repeat(129)] {
        check_text(PspReference::parse, bad, false);
    }
}

#[test]
fn urls_need_a_scheme_and_a_host() {
    for ok in ["https://pay.example.no", "http://127.0.0.1:8080/base?x=1"] {
        check_text(HttpUrl::parse, ok, true);
    }
    for bad in [
        "pay.example.no",
        "https://",
        "https:///path",
        "ftp://x",
        "https://a b",
    ] {
        check_text(HttpUrl::parse, bad, false);
    }
}

#[test]
fn webhook_url_is_built_from_the_public_base() {
    let provider = ProviderId::parse("vipps-test").unwrap();
    for base in ["https://pay.example.no", "https://pay.example.no/"] {
        let url = HttpUrl::parse(base)
            .unwrap()
            .webhook_url(&provider)
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://pay.example.no/webhooks/vipps/vipps-test"
        );
    }
    for base in [
        "https://pay.example.no/?tenant=1",
        "https://pay.example.no/#top",
    ] {
        let error = HttpUrl::parse(base)
            .unwrap()
            .webhook_url(&provider)
            .unwrap_err();
        assert_eq!(error.field(), "public_url", "{base}");
    }
    let long_base = format!("https://pay.example.no/{}", "a".repeat(2010));
    assert!(HttpUrl::parse(&long_base)
        .unwrap()
        .webhook_url(&provider)
        .is_err());
}

#[test]
fn errors_name_the_field_and_the_rule() {
    let error = Msn::parse("12").unwrap_err();
    assert_eq!(error.field(), "msn");
    assert_eq!(error.rule(), "4 to 10 digits");
    assert!(error.to_string().contains("msn"), "{error}");

    let error = Currency::parse("SEK").unwrap_err();
    assert_eq!(error.field(), "currency");
    assert!(error.to_string().contains("NOK, DKK, EUR"), "{error}");
}

#[test]
fn errors_shorten_long_untrusted_input() {
    let huge = "X".repeat(10_000);
    let message = Environment::parse(&huge).unwrap_err().to_string();
    assert!(message.len() < 200, "{} bytes", message.len());
}

#[test]
fn currencies_and_environments_are_closed_sets() {
    check_text(Currency::parse, "NOK", true);
    check_text(Currency::parse, "DKK", true);
    check_text(Currency::parse, "EUR", true);
    check_text(Currency::parse, "nok", false);
    check_text(Environment::parse, "test", true);
    check_text(Environment::parse, "production", true);
    check_text(Environment::parse, "prod", false);
    check_text(ProviderKind::parse, "vipps", true);
    check_text(ProviderKind::parse, "stripe", false);
}

#[test]
fn amounts_are_non_negative_with_checked_arithmetic() {
    assert_eq!(Amount::parse("49900"), Ok(Amount::from_minor_units(49900)));
    assert!(Amount::parse("-1").is_err());
    assert!(Amount::parse("1.5").is_err());
    assert!(Amount::parse("99999999999999999999").is_err());
    assert!(Amount::from_signed(-5).is_err());
    assert!(serde_json::from_str::<Amount>("-5").is_err());
    assert_eq!(
        serde_json::from_str::<Amount>("250").unwrap().minor_units(),
        250
    );

    let max = Amount::from_minor_units(u64::MAX);
    assert_eq!(max.checked_add(Amount::from_minor_units(1)), None);
    assert_eq!(Amount::ZERO.checked_sub(Amount::from_minor_units(1)), None);
    assert_eq!(
        Amount::from_minor_units(3).saturating_sub(Amount::from_minor_units(5)),
        Amount::ZERO
    );
}

#[test]
fn secret_versions_start_at_one_and_only_grow() {
    assert!(SecretVersion::new(0).is_err());
    assert!(serde_json::from_str::<SecretVersion>("0").is_err());
    assert_eq!(SecretVersion::FIRST.get(), 1);
    assert_eq!(SecretVersion::FIRST.next().map(SecretVersion::get), Some(2));
    assert_eq!(SecretVersion::new(u32::MAX).unwrap().next(), None);
    assert_eq!(SecretVersion::parse("7").map(SecretVersion::get), Ok(7));
}

#[test]
fn payment_event_names_keep_unknown_names() {
    assert_eq!(
        PaymentEventName::parse("CAPTURED"),
        PaymentEventName::Captured
    );
    let unknown = PaymentEventName::parse("PARTIALLY_REFUNDED");
    assert_eq!(
        unknown,
        PaymentEventName::Unknown("PARTIALLY_REFUNDED".into())
    );
    assert_eq!(
        serde_json::to_string(&unknown).unwrap(),
        "\"PARTIALLY_REFUNDED\""
    );
    for name in PaymentEventName::KNOWN {
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(
            serde_json::from_str::<PaymentEventName>(&json).unwrap(),
            name
        );
    }
    assert_eq!(
        PaymentEventName::Refunded.webhook_event_type(),
        Some("epayments.payment.refunded.v1")
    );
    assert_eq!(unknown.webhook_event_type(), None);
}

#[test]
fn money_shows_major_units_with_their_minor_digits() {
    let money = |minor, currency| Money(Amount::from_minor_units(minor), currency).to_string();
    assert_eq!(money(49900, Currency::Nok), "499.00 NOK");
    assert_eq!(money(5, Currency::Eur), "0.05 EUR");
    assert_eq!(money(0, Currency::Dkk), "0.00 DKK");
    assert_eq!(money(123_456_789, Currency::Nok), "1234567.89 NOK");
    assert_eq!(money(u64::MAX, Currency::Nok), "184467440737095516.15 NOK");
}

#[test]
fn a_refused_character_is_placed_as_a_reader_counts() {
    let error = Reference::parse("bad ref!").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("reference has ' ' at character 4;"),
        "{error}"
    );
}
