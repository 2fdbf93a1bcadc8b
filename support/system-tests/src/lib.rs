//! The tests of paths across services, against the whole system
//! (`test_support::System`), and the browser tests of the test page. Plus
//! [`Browser`], a small WebDriver client for headless Chromium, and
//! [`page`], the walk through the test page that the browser tests share.

mod browser;
pub mod page;

pub use browser::Browser;
