//! Where an injected fault surfaces in the application: the strategy's `site` word (`Control::site`, ABI 6), and
//! the two bits of it each record carries. Its own module so that the ring, which the loom models compile
//! without the segment layout, can name it.

/// Where an injected fault surfaces in the application (ABI 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Site {
    /// At the call: it returns the code and nothing is started (the default, and all there was before ABI 6).
    Post = 0,
    /// At completion: the operation really runs; its completion (callback, request status, the next
    /// synchronising CUDA call) reports the code.
    Completion = 1,
    /// On the endpoint (UCX): the endpoint fails as a dead peer does: its error handler, then every operation on
    /// it until it is closed.
    Endpoint = 2,
}

impl Site {
    /// Every site, in order.
    pub const ALL: [Site; 3] = [Site::Post, Site::Completion, Site::Endpoint];

    /// Decodes the control block's site field (an unknown value reads as `Post`; writers never store one and
    /// `check_raw` reports it).
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Site::Completion,
            2 => Site::Endpoint,
            _ => Site::Post,
        }
    }

    /// The name used by the CLI, JSON and recordings.
    pub fn name(self) -> &'static str {
        match self {
            Site::Post => "post",
            Site::Completion => "completion",
            Site::Endpoint => "endpoint",
        }
    }

    /// Parses a [`Site::name`] (exact, lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        Site::ALL.into_iter().find(|site| site.name() == name)
    }
}
