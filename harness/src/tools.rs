//! A scenario's `[tools]`: the functions the LLM may call, the API that runs them, and the
//! Redis a `tool_cache = "redis"` profile keeps results in — latlab's own `redis-server` for
//! the run unless `redis_url` names one.
//!
//! The server latlab starts is its child in its own process group (a terminal's Ctrl-C goes to
//! latlab, which stops the run and then the server), listens on a free loopback port, keeps
//! nothing on disk, and is killed and reaped when the run ends, fails or is interrupted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use latlab_core::backends::{ApiKey, Timeouts, public_url};
use latlab_core::tools::{RedisCache, ToolSpec, Tools};
use serde::{Deserialize, Serialize};

/// The `url` that means the emulator's tool API.
pub const EMULATOR: &str = "emulator";

/// `[tools]` in a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsSpec {
    /// The tool API's base URL (`POST {url}/{name}`), or `emulator`.
    pub url: String,
    /// A JSON file of function definitions (`[{name, description, parameters}]`), relative to
    /// the scenario file.
    pub functions: PathBuf,
    /// Environment variable holding the API's key (sent as `Authorization: Bearer …`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A Redis to use for `tool_cache = "redis"` instead of starting one (`redis://HOST:PORT`).
    #[serde(default)]
    pub redis_url: Option<String>,
    /// The `redis-server` latlab starts otherwise (Debian's `redis-server` package).
    #[serde(default = "default_redis_server")]
    pub redis_server: String,
}

fn default_redis_server() -> String {
    "redis-server".into()
}

impl ToolsSpec {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.url != EMULATOR {
            match url::Url::parse(&self.url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => {
                    return Err((
                        "url".into(),
                        format!(
                            "{:?} is not an http(s) URL or `emulator`",
                            public_url(&self.url)
                        ),
                    ));
                }
            }
        }
        if let Some(r) = &self.redis_url
            && !(r.starts_with("redis://") || r.starts_with("rediss://"))
        {
            return Err(("redis_url".into(), "must start with redis://".into()));
        }
        Ok(())
    }

    /// The function definitions, read from `functions` beside the scenario; a bad file names
    /// itself and what is wrong.
    pub fn load_functions(&self, scenario_dir: &Path) -> anyhow::Result<Vec<ToolSpec>> {
        let path = scenario_dir.join(&self.functions);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("[tools] functions: reading {}", path.display()))?;
        let functions: Vec<ToolSpec> = serde_json::from_str(&text)
            .with_context(|| format!("[tools] functions: {}", path.display()))?;
        if functions.is_empty() {
            bail!("[tools] functions: {} defines no function", path.display());
        }
        for f in &functions {
            if f.name.is_empty()
                || f.name.len() > 64
                || !f
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bail!(
                    "[tools] functions: {}: {:?} is not a function name (A-Z a-z 0-9 _ -, at most 64)",
                    path.display(),
                    f.name
                );
            }
        }
        Ok(functions)
    }

    /// The run's tools, calling `emulator_url` when `url` is `emulator`.
    pub fn tools(
        &self,
        scenario_dir: &Path,
        emulator_url: Option<String>,
        timeouts: Timeouts,
    ) -> anyhow::Result<Tools> {
        let functions = self.load_functions(scenario_dir)?;
        let (name, url) = if self.url == EMULATOR {
            (
                "emulator".to_string(),
                emulator_url
                    .context("[tools] url = \"emulator\" but the emulator is not running")?,
            )
        } else {
            ("http".to_string(), self.url.clone())
        };
        let key = match &self.api_key_env {
            Some(var) => Some(ApiKey::from_env(var).with_context(|| {
                format!("[tools] api_key_env: environment variable {var} is not set")
            })?),
            None => None,
        };
        Ok(Tools::new(name, url, functions, key, timeouts)?)
    }
}

/// A `redis-server` latlab started for the run: killed and reaped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// Its version, as `redis-server --version` says.
    pub version: String,
}

impl RedisServer {
    /// Starts `binary` on a free loopback port with persistence off, and waits (at most 10 s)
    /// until it answers.
    pub async fn start(binary: &str) -> anyhow::Result<RedisServer> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .with_context(|| {
                format!(
                    "starting {binary}: is Redis installed? (Debian: apt-get install redis-server; or set [tools] redis_url)"
                )
            })?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(binary);
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", &std::env::temp_dir().display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let mut server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            port,
            version,
        };
        let began = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("{binary} exited at once ({status}) on port {port}");
            }
            if RedisCache::connect(&server.url, Duration::from_millis(200))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if began.elapsed() > Duration::from_secs(10) {
                bail!("{binary} did not answer on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each profile's cache, in profile order (`None`: `tool_cache = "none"`), and the server
/// started for them, if any. Redis profiles share one server, each in its own key namespace.
pub async fn caches(
    spec: &ToolsSpec,
    profiles: &[latlab_core::profile::Profile],
    timeouts: Timeouts,
) -> anyhow::Result<(
    Vec<Option<Arc<dyn latlab_core::tools::ToolCacheStore>>>,
    Option<RedisServer>,
    serde_json::Value,
)> {
    use latlab_core::profile::ToolCache;
    let mut server = None;
    let mut redis: Option<RedisCache> = None;
    let mut fact = serde_json::Value::Null;
    let mut out = Vec::with_capacity(profiles.len());
    for p in profiles {
        out.push(match p.tool_cache {
            ToolCache::None => None,
            ToolCache::Memory => Some(Arc::new(latlab_core::tools::MemoryCache::default())
                as Arc<dyn latlab_core::tools::ToolCacheStore>),
            ToolCache::Redis => {
                if redis.is_none() {
                    let url = match &spec.redis_url {
                        Some(url) => {
                            fact = serde_json::json!({"redis": "given", "url": public_url(url)});
                            url.clone()
                        }
                        None => {
                            let s = RedisServer::start(&spec.redis_server).await?;
                            fact = serde_json::json!({
                                "redis": "started for the run",
                                "url": s.url,
                                "version": s.version,
                            });
                            let url = s.url.clone();
                            server = Some(s);
                            url
                        }
                    };
                    redis = Some(
                        RedisCache::connect(&url, timeouts_connect(timeouts))
                            .await
                            .with_context(|| {
                                format!("connecting to Redis at {}", public_url(&url))
                            })?,
                    );
                }
                redis
                    .clone()
                    .map(|r| Arc::new(r) as Arc<dyn latlab_core::tools::ToolCacheStore>)
            }
        });
    }
    Ok((out, server, fact))
}

fn timeouts_connect(t: Timeouts) -> Duration {
    Duration::from_millis(t.connect_ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_tools_section_names_its_key() {
        let spec: ToolsSpec = toml::from_str("url = \"ftp://x\"\nfunctions = \"f.json\"").unwrap();
        assert_eq!(spec.validate().unwrap_err().0, "url");
        let spec: ToolsSpec = toml::from_str(
            "url = \"emulator\"\nfunctions = \"f.json\"\nredis_url = \"127.0.0.1:6379\"",
        )
        .unwrap();
        assert_eq!(spec.validate().unwrap_err().0, "redis_url");
    }

    #[test]
    fn function_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let spec: ToolsSpec = toml::from_str("url = \"emulator\"\nfunctions = \"f.json\"").unwrap();
        std::fs::write(dir.path().join("f.json"), r#"[{"name":"bad name"}]"#).unwrap();
        let e = spec.load_functions(dir.path()).unwrap_err().to_string();
        assert!(e.contains("f.json") && e.contains("bad name"), "{e}");
        std::fs::write(
            dir.path().join("f.json"),
            r#"[{"name":"order_status","description":"d","parameters":{"type":"object"}}]"#,
        )
        .unwrap();
        assert_eq!(spec.load_functions(dir.path()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_started_redis_answers_and_is_gone_once_dropped() {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipping: no redis-server here (apt-get install redis-server)");
            return;
        }
        let server = RedisServer::start("redis-server").await.unwrap();
        let pid = server.pid();
        let cache = RedisCache::connect(&server.url, Duration::from_secs(2))
            .await
            .unwrap();
        use latlab_core::tools::ToolCacheStore;
        cache.put("k", "v", Duration::from_secs(5)).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
        drop(server);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "redis-server {pid} is still there"
        );
    }
}
