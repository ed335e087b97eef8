//! The web client of `make dev`, driven in headless Chromium as two people chatting: the page is
//! loaded from another origin than the API (`localhost` against `127.0.0.1`), so every call is a
//! CORS call, as from a page of one's own. A failed step leaves a screenshot of each browser in
//! `target/tmp/web/`.

mod webdriver;

use std::path::PathBuf;

use serde_json::json;
use webdriver::{Browser, Driver, Screen};

/// The two browsers and where their screenshots go.
struct Scene {
    browsers: Vec<Browser>,
    out: PathBuf,
}

impl Scene {
    /// `result` of step `name`, or a screenshot of every browser and a failed test.
    async fn step<T>(&self, name: &str, result: Result<T, String>) -> T {
        match result {
            Ok(value) => value,
            Err(err) => {
                let mut shots = Vec::new();
                for browser in &self.browsers {
                    let path = self.out.join(format!("{}-{}.png", name.replace(' ', "-"), browser.name));
                    shots.push(browser.screenshot(&path).await.map_or_else(|e| e, |p| p.display().to_string()));
                }
                panic!("step '{name}' failed: {err}\nscreenshots: {}", shots.join(", "));
            }
        }
    }

    async fn sign_in(&self, who: &Browser, page: &str, org: &str) {
        let user = who.name.as_str();
        self.step("open the page", who.go(page).await).await;
        self.step("sign-in form", who.until("return document.body.dataset.view === 'signin'").await).await;
        self.step("type a user id", who.type_into("#user-id", user).await).await;
        self.step("sign in", who.click("#signin-form button[type=submit]").await).await;
        self.step("org picker", who.until("return document.body.dataset.view === 'orgs'").await).await;
        let listed = format!("#org-list [data-org='{org}']");
        self.step("the org is listed", who.until(&format!("return document.querySelector(\"{listed}\")")).await).await;
        self.step("open the org", who.click(&listed).await).await;
        self.step("inbox", who.until("return document.body.dataset.view === 'inbox'").await).await;
    }
}

/// Two people who have never used the product start talking with one link: Alice signs in, makes an
/// organisation and an invite; Bob opens the link in his own browser, signs in, joins, and they write
/// to each other (addresses in messages are links, markup is text). Alice mentions Bob, who sees it
/// apart, mutes the room and watches for a keyword. Then Alice revokes the link, and opening it
/// again says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_strangers_start_a_conversation_from_one_invite_link() {
    let app = dm_tests::spawn_app().await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-invite");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("an output folder");
    let driver = Driver::start().await;
    let alice = driver.browser("alice", Screen::Desktop { width: 1200, height: 900 }).await;
    let bob = driver.browser("bob", Screen::Phone { width: 390, height: 844 }).await;
    let scene = Scene { browsers: vec![alice, bob], out };
    let (alice, bob) = (&scene.browsers[0], &scene.browsers[1]);

    // Alice, new here, makes an organisation; alone in it, New message offers her to invite people.
    let page = format!("{}/app/?api={}", app.base.replace("127.0.0.1", "localhost"), app.base);
    scene.step("alice opens the page", alice.go(&page).await).await;
    scene.step("alice types her id", alice.type_into("#user-id", "alice").await).await;
    scene.step("alice signs in", alice.click("#signin-form button[type=submit]").await).await;
    scene.step("no orgs yet", alice.until("return document.body.dataset.view === 'orgs'").await).await;
    scene.step("alice names an org", alice.type_into("#org-name", "Acme").await).await;
    scene.step("alice creates it", alice.click("#create-org-form button[type=submit]").await).await;
    scene.step("her inbox", alice.until("return document.body.dataset.view === 'inbox'").await).await;
    scene.step("new message", alice.click("#new-dm").await).await;
    let alone = "return document.querySelector('#new-dm-error').textContent.includes('Nobody else') \
                 && !document.querySelector('#new-dm-invite').hidden";
    scene.step("nobody else yet", alice.until(alone).await).await;
    scene.step("invite people", alice.click("#new-dm-invite").await).await;
    scene.step("the team page", alice.until("return document.body.dataset.view === 'team'").await).await;
    scene.step("alice makes a link", alice.click("#invite-create").await).await;
    let link = "return document.querySelector('#invite-link').value || null";
    let link = scene.step("the link", alice.until(link).await).await;
    let link = link.as_str().expect("a link").to_owned();
    assert!(link.starts_with(&format!("{}/app/#invite=", app.base)), "{link}");
    scene.step("the live invite", alice.until("return document.querySelector('#invite-list .revoke')").await).await;

    // Bob opens it in his own browser: he signs in first, then sees where it leads, and joins.
    scene.step("bob opens the link", bob.go(&link).await).await;
    let asked = "return document.body.dataset.view === 'signin' && location.hash === '' \
                 && document.querySelector('#signin-title').textContent.includes('invitation')";
    scene.step("bob is asked to sign in", bob.until(asked).await).await;
    scene.step("bob types his id", bob.type_into("#user-id", "bob").await).await;
    scene.step("bob signs in", bob.click("#signin-form button[type=submit]").await).await;
    let offer = "return document.body.dataset.view === 'join' \
                 && document.querySelector('#join-title').textContent === 'Join Acme as member?'";
    scene.step("join acme as member?", bob.until(offer).await).await;
    scene.step("bob gives his name", bob.type_into("#join-name", "Bob Stone").await).await;
    scene.step("bob joins", bob.click("#join-accept").await).await;
    scene.step("bob's inbox", bob.until("return document.body.dataset.view === 'inbox'").await).await;
    let listed = "return document.querySelector('#team-members [data-member=bob] .name')?.textContent === 'Bob Stone'";
    scene.step("alice's team lists bob live", alice.until(listed).await).await;
    // A member sees the team, and nothing to change in it.
    scene.step("bob opens the team page", bob.click("#open-team").await).await;
    let read_only = "return document.querySelector('#team-members [data-member=alice]') \
                     && document.querySelector('#invite-section').hidden \
                     && !document.querySelector('#team-members select, #team-members .remove')";
    scene.step("bob sees the list only", bob.until(read_only).await).await;
    scene.step("bob goes back", bob.click("#team-back").await).await;

    // Alice finds him by name and writes; Bob gets a link, and markup shown as text.
    scene.step("alice leaves the team page", alice.click("#team-back").await).await;
    scene.step("new message again", alice.click("#new-dm").await).await;
    scene.step("alice types a name", alice.type_into("#new-dm-member", "bob st").await).await;
    let offered = "return document.querySelector('#member-list [data-member=bob]')?.textContent === 'Bob Stone (bob)'";
    scene.step("bob is offered", alice.until(offered).await).await;
    scene.step("alice picks bob", alice.click("#member-list [data-member=bob]").await).await;
    scene.step("the room opens", alice.until("return document.body.dataset.view === 'room'").await).await;
    let text = "Welcome! The plan: https://example.com/plan?x=1. <b>not bold</b>";
    scene.step("alice writes", alice.type_into("#message-input", &format!("{text}\u{E007}")).await).await;
    scene.step("bob's inbox lists it", bob.until("return document.querySelector('#inbox .room-item')").await).await;
    scene.step("bob opens it", bob.click("#inbox .room-item").await).await;
    let linked = "const t = document.querySelector('#messages .message .text'); const a = t?.querySelector('a'); \
                  return a && a.getAttribute('href') === 'https://example.com/plan?x=1' && a.target === '_blank' \
                  && a.rel === 'noopener noreferrer' && !t.querySelector('b') \
                  && t.textContent === 'Welcome! The plan: https://example.com/plan?x=1. <b>not bold</b>'";
    scene.step("bob sees a link and plain text", bob.until(linked).await).await;
    scene.step("bob answers", bob.type_into("#message-input", "Thanks, Alice\u{E007}").await).await;
    let answered = "return [...document.querySelectorAll('#messages .message .text')].some(t => t.textContent === 'Thanks, Alice')";
    scene.step("alice gets the answer", alice.until(answered).await).await;

    // Alice mentions Bob: typing @ offers him, and his inbox shows it apart from the unread count.
    scene.step("bob back to his inbox", bob.click("#back").await).await;
    scene.step("alice types @", alice.type_into("#message-input", "@Bo").await).await;
    let offered = "return document.querySelector('#mention-list:not([hidden]) [data-member=bob]')";
    scene.step("bob is offered", alice.until(offered).await).await;
    scene.step("alice picks him", alice.click("#mention-list [data-member=bob]").await).await;
    let tagged = "return document.querySelector('#message-input').value === '@Bob Stone '";
    scene.step("the tag", alice.until(tagged).await).await;
    scene.step("alice writes on", alice.type_into("#message-input", "this is for you\u{E007}").await).await;
    let badge = "const row = document.querySelector('#inbox .room-item'); \
                 return row?.querySelector('.mention-badge').textContent === '@1' \
                 && row.querySelector('.badge').textContent === '1'";
    scene.step("bob's mention badge", bob.until(badge).await).await;
    scene.step("bob opens the room", bob.click("#inbox .room-item").await).await;
    let marked = "return document.querySelector('#messages .message.mentions-me .text')?.textContent === '@Bob Stone this is for you'";
    scene.step("the message meant for him stands out", bob.until(marked).await).await;

    // Bob mutes the room until he unmutes it, and watches for a keyword.
    let mute = "const s = document.querySelector('#room-mute'); s.value = 'forever'; \
                s.dispatchEvent(new Event('change')); return true";
    scene.step("bob mutes the room", bob.script(mute).await).await;
    scene.step("back to the inbox", bob.click("#back").await).await;
    scene
        .step("the room shows muted", bob.until("return document.querySelector('#inbox .room-item.muted')").await)
        .await;
    scene.step("bob opens his settings", bob.click("#open-settings").await).await;
    scene.step("the settings", bob.until("return document.querySelector('#settings-dialog').open").await).await;
    scene.step("bob adds a keyword", bob.type_into("#keywords", "deploy").await).await;
    scene.step("bob saves", bob.click("#settings-save").await).await;
    scene.step("saved", bob.until("return !document.querySelector('#settings-dialog').open").await).await;
    let org = scene.step("alice's org", alice.script("return dmClient.org").await).await;
    let org = org.as_str().expect("an org id");
    let profile = app.get(&format!("/api/v1/org/{org}/members/bob/profile"), "bob").await;
    assert_eq!(profile.body["settings"]["notifications"]["my_keywords"], json!(["deploy"]), "{}", profile.raw);

    // Alice revokes the link; opened again, it says so plainly.
    scene.step("alice opens the team page", alice.click("#open-team").await).await;
    let live = "return document.querySelector('#invite-list .revoke')";
    scene.step("the live invite again", alice.until(live).await).await;
    scene.step("alice revokes the link", alice.click("#invite-list .revoke").await).await;
    let none = "return document.querySelector('#invite-list').textContent === 'No live invites'";
    scene.step("no live invites", alice.until(none).await).await;
    scene.step("bob opens the old link", bob.go(&link).await).await;
    let refused = "return document.body.dataset.view === 'join' \
                   && document.querySelector('#join-error').textContent.includes('revoked')";
    scene.step("the link says it was revoked", bob.until(refused).await).await;

    for browser in &scene.browsers {
        browser.close().await;
    }
}

/// A 2x2 PNG, as a phone's camera would give a larger one.
const IMAGE: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00, 0x16, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x08, 0x19, 0x18, 0xfe, 0x03, 0x00, 0x29, 0xf4,
    0x05, 0xfb, 0x15, 0x3c, 0xb8, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Alice on a laptop and Bob on a phone-width screen: a DM, live delivery with an unread badge,
/// "seen", an edit and a delete, a reaction, a pin, search, a thread reply, an image, typing, and a
/// dropped connection that catches up without showing anything twice; then a longer history paged
/// in as Alice scrolls up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_the_web_client() {
    let app = dm_tests::spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("an output folder");
    let image = out.join("sunset.png");
    std::fs::write(&image, IMAGE).expect("the image to upload");

    let driver = Driver::start().await;
    let alice = driver.browser("alice", Screen::Desktop { width: 1200, height: 900 }).await;
    let bob = driver.browser("bob", Screen::Phone { width: 390, height: 844 }).await;
    let page = format!("{}/app/?api={}", app.base.replace("127.0.0.1", "localhost"), app.base);
    let scene = Scene { browsers: vec![alice, bob], out };
    let (alice, bob) = (&scene.browsers[0], &scene.browsers[1]);
    scene.sign_in(alice, &page, &org).await;
    scene.sign_in(bob, &page, &org).await;

    // Alice opens a DM with Bob and writes.
    scene.step("new message", alice.click("#new-dm").await).await;
    scene
        .step("bob is listed", alice.until("return document.querySelector('#member-list [data-member=bob]')").await)
        .await;
    scene.step("pick bob", alice.click("#member-list [data-member=bob]").await).await;
    scene.step("the room opens", alice.until("return document.body.dataset.view === 'room'").await).await;
    // The new conversation shows in Bob's inbox before anything is written in it.
    let listed = "return document.querySelectorAll('#inbox .room-item').length === 1";
    scene.step("bob's inbox lists it", bob.until(listed).await).await;
    scene.step("write", alice.type_into("#message-input", "Lunch at noon?").await).await;
    scene.step("send", alice.click("#send").await).await;

    // Bob's inbox shows it live, with an unread badge; he opens it and Alice sees "Seen".
    let badge = "const row = document.querySelector('#inbox .room-item'); \
                 return row && row.querySelector('.badge').textContent === '1' \
                 && row.querySelector('.preview').textContent === 'Lunch at noon?'";
    scene.step("bob's unread badge", bob.until(badge).await).await;
    scene.step("bob opens the room", bob.click("#inbox .room-item").await).await;
    let first = "return document.querySelector('#messages .message .text')?.textContent === 'Lunch at noon?'";
    scene.step("bob reads it", bob.until(first).await).await;
    let seen = "return document.querySelector('#messages .message.mine .seen')?.textContent === 'Seen'";
    scene.step("alice sees seen", alice.until(seen).await).await;

    // Alice corrects her message in place and deletes a stray one; Bob sees both.
    scene.step("alice edits", alice.click("#messages .message.mine .actions button:nth-last-child(2)").await).await;
    scene.step("the edit box", alice.until("return document.querySelector('.edit-form textarea')").await).await;
    let rewrite =
        "const box = document.querySelector('.edit-form textarea'); box.value = 'Lunch at 12:30?'; return true";
    scene.step("alice rewrites", alice.script(rewrite).await).await;
    scene.step("alice saves", alice.click(".edit-form button[type=submit]").await).await;
    let edited = "const m = document.querySelector('#messages .message'); \
                  return m?.querySelector('.text').textContent === 'Lunch at 12:30?' \
                  && m.querySelector('.edited').textContent === '(edited)'";
    scene.step("bob sees the edit", bob.until(edited).await).await;
    scene.step("alice writes a stray message", alice.type_into("#message-input", "oops\u{E007}").await).await;
    let stray = "return [...document.querySelectorAll('#messages .message .text')].some(t => t.textContent === 'oops')";
    scene.step("bob gets the stray message", bob.until(stray).await).await;
    // Her own copy may show after Bob's: until it does, her last message is the edited one.
    let stray_last =
        "return document.querySelector('#messages .message.mine:last-child .text')?.textContent === 'oops'";
    scene.step("alice's stray message shows", alice.until(stray_last).await).await;
    let delete = "#messages .message.mine:last-child .actions button:last-child";
    scene.step("alice deletes it", alice.click(delete).await).await;
    scene.step("alice confirms", alice.accept_alert().await).await;
    let gone = "return ![...document.querySelectorAll('#messages .message .text')].some(t => t.textContent === 'oops')";
    scene.step("bob sees it gone", bob.until(gone).await).await;

    // Bob reacts; Alice sees the count.
    scene.step("bob reacts", bob.click("#messages .message .actions button").await).await;
    let reacted = "return document.querySelector('#messages .message .reaction')?.textContent === '👍 1'";
    scene.step("alice sees the reaction", alice.until(reacted).await).await;

    // Every control a person can reach has a name a screen reader reads out.
    let unnamed = "return [...document.querySelectorAll('input, textarea, button, select')] \
                   .filter(el => el.offsetParent !== null || el.type === 'file') \
                   .filter(el => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim())) \
                   .map(el => el.outerHTML)";
    for who in [alice, bob] {
        let missing = scene.step("controls have names", who.script(unnamed).await).await;
        assert_eq!(missing, json!([]), "{}: controls without an accessible name", who.name);
    }

    // Alice pins her message; Bob sees the pin. Bob finds it by search from his inbox.
    scene.step("alice pins", alice.click("#messages .message.mine .actions .pin").await).await;
    let pinned = "return document.querySelector('#messages .message .pin-mark')?.textContent === '📌'";
    scene.step("bob sees the pin", bob.until(pinned).await).await;
    scene.step("bob goes back to his inbox", bob.click("#back").await).await;
    scene.step("bob searches", bob.type_into("#search-input", "lunch\u{E007}").await).await;
    let hit = "return document.querySelector('#panel-list .hit')?.textContent.includes('Lunch at 12:30?')";
    scene.step("bob finds the message", bob.until(hit).await).await;
    scene.step("bob opens the hit", bob.click("#panel-list .hit").await).await;
    let found = "return document.body.dataset.view === 'room' \
                 && document.querySelector('#messages .message.highlight .text')?.textContent === 'Lunch at 12:30?'";
    scene.step("the room opens at the message", bob.until(found).await).await;

    // Bob replies in a thread (a panel over the room on a phone); Alice sees the reply count.
    scene.step("bob opens the thread", bob.click("#messages .message .replies").await).await;
    scene.step("thread panel", bob.until("return !document.querySelector('#panel').hidden").await).await;
    scene.step("bob writes a reply", bob.type_into("#reply-input", "Yes, see you there").await).await;
    scene.step("bob replies", bob.click("#reply-form button").await).await;
    let replied = "return document.querySelector('#panel-list .message .text')?.textContent === 'Yes, see you there'";
    scene.step("the reply shows in the thread", bob.until(replied).await).await;
    let counted = "return document.querySelector('#messages .message .replies')?.textContent === '1 reply'";
    scene.step("alice sees 1 reply", alice.until(counted).await).await;
    scene.step("bob closes the thread", bob.click("#close-panel").await).await;

    // Bob uploads an image; Alice sees it displayed.
    let path = image.display().to_string();
    scene.step("bob attaches an image", bob.type_into("#file-input", &path).await).await;
    scene.step("bob sends the image", bob.click("#send").await).await;
    let shown = "const img = document.querySelector('#messages .message img'); \
                 return img && img.complete && img.naturalWidth === 2";
    scene.step("alice sees the image", alice.until(shown).await).await;

    // Bob types; Alice sees it.
    scene.step("bob types", bob.type_into("#message-input", "Are you there?").await).await;
    let typing = "return document.querySelector('#typing').textContent === 'bob is typing…'";
    scene.step("alice sees bob typing", alice.until(typing).await).await;
    let phone = "return innerWidth === 390 && getComputedStyle(document.querySelector('#sidebar')).display === 'none'";
    scene.step("bob's phone shows the room alone", bob.until(phone).await).await;

    // Alice's connection drops; what Bob sends meanwhile arrives once she is back, once.
    let drop = "dmClient.live.closed = true; dmClient.live.socket.close(); return true";
    scene.step("alice's connection drops", alice.script(drop).await).await;
    let offline = "return !document.querySelector('#connection').classList.contains('online')";
    scene.step("alice is disconnected", alice.until(offline).await).await;
    scene.step("bob sends while she is away", bob.click("#send").await).await;
    let sent = "return [...document.querySelectorAll('#messages .message .text')].some(t => t.textContent === 'Are you there?')";
    scene.step("bob's message is stored", bob.until(sent).await).await;
    let back = "dmClient.live.closed = false; dmClient.live.reconnect(); return true";
    scene.step("alice reconnects", alice.script(back).await).await;
    scene.step("alice catches up", alice.until(sent).await).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let texts =
        "return [...document.querySelectorAll('#messages > .message')].map(m => m.querySelector('.text').textContent)";
    let shown = scene.step("alice's messages", alice.script(texts).await).await;
    assert_eq!(shown, json!(["Lunch at 12:30?", "", "Are you there?"]), "each message once, in order");

    // Bob has read everything: his unread-only inbox is empty, the whole one lists the room.
    scene.step("bob back to his inbox", bob.click("#back").await).await;
    scene.step("bob filters unread", bob.click("#unread-only").await).await;
    let nothing_unread =
        "return document.querySelector('#inbox .empty') && !document.querySelector('#inbox .room-item')";
    scene.step("nothing unread", bob.until(nothing_unread).await).await;
    scene.step("bob shows all", bob.click("#unread-only").await).await;
    scene.step("the room is listed", bob.until("return document.querySelector('#inbox .room-item')").await).await;

    // Bob appears offline: Alice sees it at once, and sees him online again when he shows it.
    let bob_online = "return document.querySelector('#room-presence').classList.contains('online')";
    let bob_offline = "return !document.querySelector('#room-presence').classList.contains('online')";
    scene.step("alice sees bob online", alice.until(bob_online).await).await;
    scene.step("bob appears offline", bob.click("#appear-offline").await).await;
    scene.step("alice sees bob offline", alice.until(bob_offline).await).await;
    scene.step("bob shows his presence", bob.click("#appear-offline").await).await;
    scene.step("alice sees bob online again", alice.until(bob_online).await).await;

    // A longer history: reopened, the room shows the newest page, and older ones as Alice scrolls up.
    let room = scene.step("the room's id", alice.script("return dmClient.room.id").await).await;
    let room = room.as_str().expect("a room id").to_owned();
    for i in 0..40 {
        app.send(&org, &room, "bob", &format!("history {i}")).await;
    }
    let all = "return document.querySelectorAll('#messages > .message').length === 43";
    scene.step("alice gets the history live", alice.until(all).await).await;
    scene.step("alice reloads", alice.script("location.reload(); return true").await).await;
    scene.step("back in her inbox", alice.until("return document.body.dataset.view === 'inbox'").await).await;
    scene.step("alice reopens the room", alice.click("#inbox .room-item").await).await;
    let newest = "return document.querySelectorAll('#messages > .message').length === 30";
    scene.step("the newest page", alice.until(newest).await).await;
    let scroll_up = "document.querySelector('#messages').scrollTop = 0; \
                     return document.querySelectorAll('#messages > .message').length === 43";
    scene.step("older pages on scrolling up", alice.until(scroll_up).await).await;
    let shown = scene.step("alice's messages", alice.script(texts).await).await;
    let mut expected = vec![json!("Lunch at 12:30?"), json!(""), json!("Are you there?")];
    expected.extend((0..40).map(|i| json!(format!("history {i}"))));
    assert_eq!(shown, json!(expected), "every message once, oldest first");

    // A notification's link opens its room.
    scene.step("alice opens the client afresh", alice.go(&page).await).await;
    scene.step("her inbox", alice.until("return document.body.dataset.view === 'inbox'").await).await;
    let link = format!("{page}#room={org}/{room}");
    scene.step("alice opens a notification's link", alice.go(&link).await).await;
    let opened = format!("return document.body.dataset.view === 'room' && dmClient.room.id === '{room}'");
    scene.step("its room opens", alice.until(&opened).await).await;

    // Notifications for this browser: the service worker registers, and a browser that refuses
    // them (headless Chromium shows no prompt) is said to have refused.
    scene.step("bob opens his notification settings", bob.click("#open-settings").await).await;
    scene.step("bob enables notifications", bob.click("#enable-push").await).await;
    let told = "const told = document.querySelector('#push-status').textContent; \
                return told !== 'Asking the browser...' && told";
    let told = scene.step("the browser answers", bob.until(told).await).await;
    assert!(told.as_str().is_some_and(|told| told.starts_with("The browser refused")), "{told}");
    let worker = "return navigator.serviceWorker.getRegistration().then(r => r && r.scope)";
    let scope = scene.step("the service worker", bob.until(worker).await).await;
    assert!(scope.as_str().is_some_and(|scope| scope.ends_with("/app/")), "{scope}");

    for browser in &scene.browsers {
        browser.close().await;
    }
}
