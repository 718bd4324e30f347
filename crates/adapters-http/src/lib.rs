//! Webhook delivery over awc (being written).
