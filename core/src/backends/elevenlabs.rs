//! Text-to-speech over ElevenLabs' HTTP API: `POST {base_url}/v1/text-to-speech/{voice_id}/stream`
//! (or the whole-body endpoint without `/stream`) with `xi-api-key`, PCM or WAV output.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ApiKey, HttpClients, Timeouts, join_url, next_chunk, reject_status, send};
use crate::audio::Container;
use crate::stage::{AudioStream, TextToSpeech, TtsRequest};
use crate::timing::{ErrorKind, StageError};

/// Scenario settings of the ElevenLabs backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevenLabsConfig {
    /// `https://api.elevenlabs.io`, or `emulator`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The voice.
    #[serde(default = "default_voice")]
    pub voice_id: String,
    /// Model id.
    #[serde(default = "default_model")]
    pub model: String,
    /// `pcm_<rate>` (raw 16-bit PCM) or `wav_<rate>`: formats whose first audible sample
    /// can be found without decoding.
    #[serde(default = "default_format")]
    pub output_format: String,
    /// Environment variable holding the API key.
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
}

fn default_base_url() -> String {
    "https://api.elevenlabs.io".into()
}
fn default_voice() -> String {
    "JBFqnCBsd6RMkjVDRZzb".into()
}
fn default_model() -> String {
    "eleven_flash_v2_5".into()
}
fn default_format() -> String {
    "pcm_16000".into()
}
fn default_key_env() -> String {
    "ELEVENLABS_API_KEY".into()
}

/// Parses an output format into its container and sample rate.
pub fn parse_output_format(format: &str) -> Result<(Container, u32), String> {
    let (codec, rate) = format
        .split_once('_')
        .ok_or_else(|| format!("output_format {format:?} is not <codec>_<rate>"))?;
    let container = match codec {
        "pcm" => Container::RawPcm,
        "wav" => Container::Wav,
        _ => {
            return Err(format!(
                "output_format {format:?}: latlab needs pcm_<rate> or wav_<rate> to find the first audible sample"
            ));
        }
    };
    let rate: u32 = rate
        .parse()
        .map_err(|_| format!("output_format {format:?}: {rate:?} is not a sample rate"))?;
    Ok((container, rate))
}

/// The ElevenLabs client.
#[derive(Debug, Clone)]
pub struct ElevenLabsTts {
    config: ElevenLabsConfig,
    key: Option<ApiKey>,
    timeouts: Timeouts,
    http: HttpClients,
    container: Container,
    sample_rate: u32,
}

impl ElevenLabsTts {
    /// A client for `config`; fails if the output format cannot be measured.
    pub fn new(
        config: ElevenLabsConfig,
        key: Option<ApiKey>,
        timeouts: Timeouts,
    ) -> Result<ElevenLabsTts, StageError> {
        let (container, sample_rate) = parse_output_format(&config.output_format)
            .map_err(|e| StageError::new(ErrorKind::Protocol, e))?;
        Ok(ElevenLabsTts {
            http: HttpClients::new(&timeouts)?,
            config,
            key,
            timeouts,
            container,
            sample_rate,
        })
    }
}

fn error_message(v: &serde_json::Value) -> Option<String> {
    v.pointer("/detail/message")
        .or_else(|| v.get("detail"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
}

#[async_trait]
impl TextToSpeech for ElevenLabsTts {
    fn name(&self) -> &str {
        "elevenlabs"
    }

    async fn start(&self, request: &TtsRequest) -> Result<Box<dyn AudioStream>, StageError> {
        let voice: String =
            url::form_urlencoded::byte_serialize(self.config.voice_id.as_bytes()).collect();
        let path = if request.streaming {
            format!("v1/text-to-speech/{voice}/stream")
        } else {
            format!("v1/text-to-speech/{voice}")
        };
        let url = format!(
            "{}?output_format={}",
            join_url(&self.config.base_url, &path),
            self.config.output_format
        );
        let mut builder = self
            .http
            .get(request.reuse_connection)
            .post(url)
            .json(&serde_json::json!({ "text": request.text, "model_id": self.config.model }))
            .header(super::SESSION_HEADER, &request.session);
        if let Some(key) = &self.key {
            builder = builder.header("xi-api-key", key.expose());
        }
        let resp = send(builder, &self.timeouts).await?;
        let resp = reject_status(resp, &self.timeouts, error_message).await?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") || content_type.starts_with("text/") {
            return Err(StageError::new(
                ErrorKind::Protocol,
                format!("expected audio, got Content-Type {content_type:?}"),
            ));
        }
        Ok(Box::new(HttpAudio {
            resp,
            timeouts: self.timeouts,
            container: self.container,
            sample_rate: self.sample_rate,
        }))
    }
}

struct HttpAudio {
    resp: reqwest::Response,
    timeouts: Timeouts,
    container: Container,
    sample_rate: u32,
}

#[async_trait]
impl AudioStream for HttpAudio {
    fn container(&self) -> Container {
        self.container
    }
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    async fn next_chunk(&mut self) -> Option<Result<Bytes, StageError>> {
        next_chunk(&mut self.resp, &self.timeouts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_formats() {
        assert_eq!(
            parse_output_format("pcm_16000").unwrap(),
            (Container::RawPcm, 16000)
        );
        assert_eq!(
            parse_output_format("wav_22050").unwrap(),
            (Container::Wav, 22050)
        );
        assert!(parse_output_format("mp3_44100_128").is_err());
        assert!(parse_output_format("pcm_fast").is_err());
    }
}
