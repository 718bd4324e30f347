//! Shared nothing: all black-box tests live in `api/`.
