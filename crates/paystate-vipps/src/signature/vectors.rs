//! The signing vectors of VIPPS.md §2, shared by the signing and verification tests.

/// One complete delivery with its expected signature headers.
pub(crate) struct Vector {
    pub secret: &'static str,
    pub url: &'static str,
    pub body: &'static str,
    pub date: &'static str,
    pub content_sha256: &'static str,
    pub signature: &'static str,
}

/// The official example from Vipps's request-authentication page.
pub(crate) const OFFICIAL: Vector = Vector {
    secret:
        "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==",
    url: "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63",
    body: r#"{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}"#,
    date: "Thu, 30 Mar 2023 08:38:32 GMT",
    content_sha256: "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=",
    signature: "agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U=",
};

/// A real ePayment body with a query string in the URL.
pub(crate) const QUERY: Vector = Vector {
    secret:
        "4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVqjfMhbCn8vVaimKRcKmqSvy5yQY4ZDSa9ba6tU0zxeA==",
    url: "https://pay.example.no/hooks/vipps/v1?tenant=acme-42",
    body: r#"{"msn":"123456","reference":"acme-order-1001","pspReference":"9f0c2a4e-6b1d-4c2a-8f3e-5d7b9a1c0e22","name":"AUTHORIZED","amount":{"currency":"NOK","value":49900},"timestamp":"2025-01-14T09:30:01.123Z","idempotencyKey":"3b9d7f1e-8c2a-4e6b-9d0f-1a2b3c4d5e6f","success":true}"#,
    date: "Tue, 14 Jan 2025 09:30:05 GMT",
    content_sha256: "0ksT260wi1nTDtpRtPNbEdvztimXe/fZVTHD+2fPkZY=",
    signature: "S7HJs6Kc6w1qPwUmmY66WWQL1YCcLo2DbXoR0VvN/Vk=",
};

/// The query vector's date, one second later.
pub(crate) const QUERY_DATE_PLUS_ONE_SECOND: &str = "Tue, 14 Jan 2025 09:30:06 GMT";

pub(crate) const WRONG_PATH_WITHOUT_QUERY: &str = "5RwrpqDo9EnZ3w1RdTBEzLjBsfABIAUpu2CbtsmFxqI=";
pub(crate) const WRONG_TRAILING_SLASH: &str = "D/knmJB4t7YHO8ZcEdVEVhV+1c6Ucf6Ftq7fWnWX5Iw=";
pub(crate) const WRONG_HOST_DEFAULT_PORT: &str = "fbWZZhgwNUOEoUysV9B00+CH57RvholaGJKOm62k2AY=";
pub(crate) const WRONG_HOST_PROXY_HOP: &str = "5zgaRuYze+mPiiXjohUF2GXLKqfa3+adS4NpKuEWizw=";
pub(crate) const WRONG_FULL_URL_AS_PATH: &str = "bjh9AKHazrfBRo1rqn4dqpX8aNwrTXWQUUYIWMvWt4I=";
pub(crate) const WRONG_DECODED_SECRET: &str = "h+ycsgGOrwiE4Fgaf+iSI3aq4PLLhCHtpRJIoqVt7Dg=";
pub(crate) const WRONG_DATE_PLUS_ONE_SECOND: &str = "U4xm1tYLxy7TN0XExtpqphD0+a26v0mST2h29Xi/uNk=";

/// The query vector's body and date sent to a registered URL with a non-default port.
pub(crate) const NON_DEFAULT_PORT_URL: &str = "https://pay.example.no:8443/hooks/vipps/v1";
pub(crate) const NON_DEFAULT_PORT_SIGNATURE: &str = "bVpVctRFEUfkGbtx3VbSGStUmu05c/RBC56RvBvOpjI=";
