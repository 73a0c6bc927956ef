//! What the connector says about itself: Logto's metadata for `@logto/connector-huggingface`, extended.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use connector_api::{FormItem, FormItemType, I18nText, Metadata, Platform};

/// The factory id Logto uses, so configs move between brokers unchanged.
pub const CONNECTOR_ID: &str = "huggingface-universal";

fn texts(pairs: &[(&str, &str)]) -> I18nText {
    pairs
        .iter()
        .map(|(lang, text)| (lang.to_string(), text.to_string()))
        .collect()
}

fn item(key: &str, label: &str, required: bool, placeholder: &str, description: &str) -> FormItem {
    FormItem {
        placeholder: Some(placeholder.into()),
        description: Some(description.into()),
        ..FormItem::text(key, label, required)
    }
}

/// The metadata, built once per call (hosts read it once, at load).
pub fn metadata() -> Metadata {
    let logo = format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(include_bytes!("../logo.svg"))
    );
    Metadata {
        id: CONNECTOR_ID.into(),
        target: "huggingface".into(),
        platform: Platform::Universal,
        name: texts(&[
            ("en", "Hugging Face"),
            ("zh-CN", "Hugging Face"),
            ("tr-TR", "Hugging Face"),
            ("ko", "Hugging Face"),
        ]),
        description: texts(&[
            (
                "en",
                "Hugging Face is the home of machine learning models, datasets and Spaces. Sign in with a Hugging Face account through OAuth 2.0 / OpenID Connect.",
            ),
            (
                "zh-CN",
                "Hugging Face 是机器学习模型、数据集和 Spaces 的平台。通过 OAuth 2.0 / OpenID Connect 使用 Hugging Face 账户登录。",
            ),
            (
                "tr-TR",
                "Hugging Face; makine öğrenimi modelleri, veri kümeleri ve Spaces platformudur. OAuth 2.0 / OpenID Connect ile Hugging Face hesabıyla oturum açın.",
            ),
            (
                "ko",
                "Hugging Face는 머신러닝 모델, 데이터셋, Spaces를 위한 플랫폼입니다. OAuth 2.0 / OpenID Connect로 Hugging Face 계정으로 로그인합니다.",
            ),
        ]),
        logo: logo.clone(),
        logo_dark: Some(logo),
        readme: include_str!("../README.md").into(),
        form_items: vec![
            item(
                "clientId",
                "Client ID",
                true,
                "<client-id>",
                "The Client ID of your Hugging Face OAuth app.",
            ),
            FormItem {
                is_confidential: true,
                ..item(
                    "clientSecret",
                    "Client Secret",
                    true,
                    "<client-secret>",
                    "An App secret of your Hugging Face OAuth app.",
                )
            },
            FormItem {
                default_value: Some("profile".into()),
                ..item(
                    "scope",
                    "Scope",
                    false,
                    "profile email",
                    "Space-separated scopes. `profile` is needed for the name and avatar, `email` for the email address; `profile` is used when empty.",
                )
            },
            item(
                "endpoint",
                "Hub endpoint",
                false,
                "https://huggingface.co",
                "The Hugging Face Hub URL; leave empty for https://huggingface.co (or HF_ENDPOINT when set).",
            ),
            FormItem {
                item_type: FormItemType::Number,
                default_value: Some(5000.into()),
                ..item(
                    "requestTimeoutMs",
                    "Request timeout (ms)",
                    false,
                    "5000",
                    "Timeout of each request to Hugging Face.",
                )
            },
        ],
    }
}
