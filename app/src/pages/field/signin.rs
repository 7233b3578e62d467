//! The sign-in page: a plain HTML form posted to `POST /login`, so it works before the
//! app has loaded; the server sends the browser back here with the reason if it fails.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// One demo account, for the sign-in page in demo mode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DemoAccount {
    /// What to sign in with.
    pub login: String,
    /// Its public demo password.
    pub password: String,
    /// Its role, in words.
    pub role: String,
    /// Its teams.
    pub teams: String,
}

/// The demo accounts the server provides through context in demo mode.
#[derive(Clone, Debug, Default)]
pub struct DemoMode(pub Vec<DemoAccount>);

/// `/login`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let message = move || {
        query.with(|q| {
            if let Some(wait) = q.get("wait") {
                Some(format!(
                    "Too many failed attempts. Wait {wait} seconds, then try again."
                ))
            } else {
                match q.get("error").as_deref() {
                    Some("wrong") => {
                        Some("That login and password do not match an active account.".to_owned())
                    }
                    Some("unavailable") => {
                        Some("The server cannot sign you in right now; try again shortly.".to_owned())
                    }
                    _ => None,
                }
            }
        })
    };
    let signed_out = move || query.with(|q| q.get("signed_out").is_some());
    // Rendered by the server, which has them in demo mode, and handed to the hydrating
    // page in the HTML: no request and no loading state. Links here are `rel="external"`,
    // so this page is never built by the browser alone.
    let demo = SharedValue::new(|| use_context::<DemoMode>().map(|d| d.0).unwrap_or_default());
    view! {
        <h1>"Sign in"</h1>
        {move || signed_out().then(|| view! {
            <p class="notice" role="status" data-testid="signed-out">
                "You are signed out. Reports and pages were removed from this device."
            </p>
        })}
        {move || message().map(|m| view! { <p class="notice" role="alert" data-testid="signin-error">{m}</p> })}
        <form method="post" action="/login" class="signin">
            <div class="field">
                <label for="login">"Login"</label>
                <input id="login" name="login" type="text" autocomplete="username" autocapitalize="none" required />
            </div>
            <div class="field">
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required />
            </div>
            <button type="submit" class="button primary" data-testid="sign-in">"Sign in"</button>
        </form>
        <p class="sub">
            "Once signed in, this device keeps working offline until your session ends."
        </p>
        {
            let accounts = demo.into_inner();
            (!accounts.is_empty()).then(|| view! {
                <section aria-labelledby="demo-heading" class="demo-accounts">
                    <h2 id="demo-heading">"Demo accounts"</h2>
                    <p>"This server runs in demo mode. Never use it for real incidents."</p>
                    <table>
                        <thead><tr><th scope="col">"Login"</th><th scope="col">"Password"</th><th scope="col">"Role"</th><th scope="col">"Team"</th></tr></thead>
                        <tbody>
                            {accounts.into_iter().map(|a| view! {
                                <tr><td>{a.login}</td><td>{a.password}</td><td>{a.role}</td><td>{a.teams}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
            })
        }
    }
}
