//! The requests of each bench scenario, drawn at random from the loaded dataset.
//!
//! The same scenarios, with the same mix and the same bodies, are written in Lua for wrk
//! (`scripts/bench/wrk.lua`): the closed-loop and the open-loop figures measure the same
//! requests. Credentials and ids rotate per request: a random API key (and so a random
//! tenant), then a random row of that tenant.

use std::path::Path;

/// A scenario's name, as `make bench` passes it (`--scenario`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /v1/contacts/{id}`.
    GetContact,
    /// `GET /v1/contacts?limit=25`.
    ListContacts,
    /// `GET /v1/contacts?limit=25&q=last<n>`.
    SearchContacts,
    /// `POST /v1/contacts` (writes the contact, its event and its webhook delivery).
    CreateContact,
    /// `PATCH /v1/contacts/{id}` (a new title).
    UpdateContact,
    /// `GET /v1/leads?stageId=…&limit=25`.
    LeadsByStage,
    /// 80% reads, 20% writes: 40 get, 20 list, 10 search, 10 leads, 10 create, 10 update.
    Mix,
}

impl Scenario {
    /// Parses the names `make bench` uses.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "get" => Self::GetContact,
            "list" => Self::ListContacts,
            "list_q" => Self::SearchContacts,
            "post" => Self::CreateContact,
            "patch" => Self::UpdateContact,
            "leads" => Self::LeadsByStage,
            "mix" => Self::Mix,
            _ => return None,
        })
    }
}

/// The ids and keys the bench database was loaded with (written by `scripts/bench.sh`).
#[derive(Debug)]
pub struct Fixtures {
    /// API keys, tenant-major: the first `keys_per_tenant` lines are tenant 1's.
    keys: Vec<String>,
    /// Contact ids, tenant-major.
    contacts: Vec<String>,
    /// Stage ids, tenant-major, six per tenant.
    stages: Vec<String>,
    tenants: usize,
}

fn lines(path: &Path) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

impl Fixtures {
    /// Reads `keys.txt`, `contacts.txt` and `stages.txt` from `dir`.
    ///
    /// # Errors
    /// A message when a file is missing or the counts do not divide by the tenants.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let keys = lines(&dir.join("keys.txt"))?;
        let contacts = lines(&dir.join("contacts.txt"))?;
        let stages = lines(&dir.join("stages.txt"))?;
        let tenants = stages.len() / 6;
        if tenants == 0
            || stages.len() % 6 != 0
            || keys.len() % tenants != 0
            || contacts.len() % tenants != 0
            || keys.is_empty()
            || contacts.is_empty()
        {
            return Err(format!(
                "fixtures in {} do not divide into tenants ({} keys, {} contacts, {} stages)",
                dir.display(),
                keys.len(),
                contacts.len(),
                stages.len()
            ));
        }
        Ok(Self {
            keys,
            contacts,
            stages,
            tenants,
        })
    }
}

/// A small, fast generator (xorshift64*): the draws need no quality beyond spreading ids.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (zero is replaced: xorshift would stay at zero).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }
}

/// One request, ready to write.
#[derive(Debug)]
pub struct Request {
    /// Method, path, headers and body as HTTP/1.1 bytes.
    pub bytes: Vec<u8>,
}

fn request(method: &str, path: &str, key: &str, body: Option<&str>) -> Request {
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n");
    if let Some(body) = body {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        text.push_str("\r\n");
    }
    Request {
        bytes: text.into_bytes(),
    }
}

impl Fixtures {
    /// The next request of `scenario`: a random key, then a random row of its tenant.
    pub fn next(&self, scenario: Scenario, rng: &mut Rng) -> Request {
        let scenario = match scenario {
            Scenario::Mix => match rng.below(100) {
                0..40 => Scenario::GetContact,
                40..60 => Scenario::ListContacts,
                60..70 => Scenario::SearchContacts,
                70..80 => Scenario::LeadsByStage,
                80..90 => Scenario::CreateContact,
                _ => Scenario::UpdateContact,
            },
            other => other,
        };
        let keys_per_tenant = self.keys.len() / self.tenants;
        let contacts_per_tenant = self.contacts.len() / self.tenants;
        let k = rng.below(self.keys.len());
        let tenant = k / keys_per_tenant;
        let key = &self.keys[k];
        let contact = &self.contacts[tenant * contacts_per_tenant + rng.below(contacts_per_tenant)];
        match scenario {
            Scenario::GetContact => request("GET", &format!("/v1/contacts/{contact}"), key, None),
            Scenario::ListContacts => request("GET", "/v1/contacts?limit=25", key, None),
            Scenario::SearchContacts => {
                let n = 1 + rng.below(contacts_per_tenant);
                request(
                    "GET",
                    &format!("/v1/contacts?limit=25&q=last{n}"),
                    key,
                    None,
                )
            }
            Scenario::CreateContact => {
                let body = format!(
                    r#"{{"firstName":"Bench","lastName":"Post","email":"p{}@post.example","tags":["bench"]}}"#,
                    rng.next_u64()
                );
                request("POST", "/v1/contacts", key, Some(&body))
            }
            Scenario::UpdateContact => {
                let body = format!(r#"{{"title":"Title {}"}}"#, rng.below(1_000_000));
                request(
                    "PATCH",
                    &format!("/v1/contacts/{contact}"),
                    key,
                    Some(&body),
                )
            }
            Scenario::LeadsByStage | Scenario::Mix => {
                let stage = &self.stages[tenant * 6 + rng.below(6)];
                request(
                    "GET",
                    &format!("/v1/leads?stageId={stage}&limit=25"),
                    key,
                    None,
                )
            }
        }
    }
}
