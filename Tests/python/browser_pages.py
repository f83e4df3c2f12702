"""Drives Debian's headless chromium through Gatehouse's pages, as a person would.

Usage: browser_pages.py BASE_URL MAIL_DIR
  BASE_URL  a gatehouse serving /app/ (auth required) and /down/ (a dead upstream)
  MAIL_DIR  its `file` mailer's directory

Every page the walk reaches is checked in the page itself with axe-core (WCAG 2.1 A and AA
and best practices, light and dark); with GATEHOUSE_SCREENSHOTS=DIR each is also captured at
desktop and phone widths, light and dark, as DIR/<page>-<width>-<scheme>.png. Exits non-zero
naming the step that failed; prints the checked pages as JSON.
"""

import email
import glob
import json
import os
import sys
import time
import urllib.error
import urllib.request

import axe_core_python
import pyotp
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE, MAIL_DIR = sys.argv[1].rstrip("/"), sys.argv[2]
SHOTS = os.environ.get("GATEHOUSE_SCREENSHOTS")
AXE = open(os.path.join(os.path.dirname(axe_core_python.__file__), "axe.min.js"), encoding="utf-8").read()
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
  .then(r => done(JSON.stringify(r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.html)})))),
        e => done(JSON.stringify([{id: 'axe-error', help: String(e), nodes: []}])));
"""
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}
EMAIL, PASSWORD, NEW_PASSWORD = "ada@example.com", "analytical engine 1843", "difference engine 1822"
checked = []


def step(text):
    print(f"step: {text}", file=sys.stderr, flush=True)


class Browser:
    def __init__(self):
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,860",
                         "--lang=en-US", "--no-first-run", "--password-store=basic", "--hide-scrollbars"]:
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(90)
        self.driver.set_script_timeout(90)

    def go(self, path):
        self.driver.get(BASE + path)

    @property
    def path(self):
        return self.driver.current_url[len(BASE):]

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def fill(self, css, value):
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css):
        """Clicks and waits for the next document (a form's answer, a link's page)."""
        old = self.find("html")
        self.find(css).click()
        def replaced(_):
            try:
                old.tag_name
                return False
            except WebDriverException:
                # Stale, or (Chromium's other answer) a node no longer in the document.
                return True

        try:
            WebDriverWait(self.driver, 90).until(replaced)
        except TimeoutException:
            raise AssertionError(f"clicking {css} on {self.path} loaded no new page")

    def expect(self, condition, what):
        if not condition:
            raise AssertionError(f"{what} (at {self.path}): {self.text()[:600]}")

    def scheme(self, dark):
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})

    def check(self, name):
        """axe-core in the page, light and dark; then the screenshots, if asked for."""
        for dark in (False, True):
            self.scheme(dark)
            self.driver.execute_script(AXE)
            violations = json.loads(self.driver.execute_async_script(AXE_RUN))
            if violations:
                raise AssertionError(f"accessibility ({'dark' if dark else 'light'}) on {name} ({self.path}): {json.dumps(violations, indent=1)}")
        if SHOTS:
            for size, (width, height) in SIZES.items():
                for dark in (False, True):
                    self.scheme(dark)
                    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"}
                    self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
                    full = self.driver.execute_script("return document.documentElement.scrollHeight")
                    self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", dict(metrics, height=max(height, full)))
                    self.driver.save_screenshot(os.path.join(SHOTS, f"{name}-{size}-{'dark' if dark else 'light'}.png"))
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.scheme(False)
        checked.append(name)


def mailed_link(path, seen):
    """The path of the newest mailed link to `path` not in `seen` (waits for the outbox)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for name in sorted(glob.glob(os.path.join(MAIL_DIR, "*.eml"))):
            message = email.message_from_binary_file(open(name, "rb"))
            for part in message.walk():
                if part.get_content_type() != "text/plain":
                    continue
                text = part.get_payload(decode=True).decode("utf-8")
                start = text.find(path + "?token=")
                if start >= 0:
                    link = text[start:start + len(path) + 7 + 43]
                    if link not in seen:
                        seen.add(link)
                        return link
        time.sleep(0.2)
    raise AssertionError(f"no mail with a {path} link in {MAIL_DIR}")


def api(method, path, body=None, cookie=None):
    """A program's request (JSON, no browser): the status and the session cookie it set."""
    request = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "second-device/1.0")
    if cookie:
        request.add_header("Cookie", f"gatehouse_session={cookie}")
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        return error.code, None
    cookies = [value.split(";")[0].split("=", 1)[1] for name, value in response.getheaders() if name.lower() == "set-cookie" and value.startswith("gatehouse_session=")]
    return response.status, cookies[0] if cookies else None


def main():
    browser = Browser()
    seen = set()
    try:
        step("a protected page sends the browser to the login page")
        browser.go("/app/dashboard?tab=1")
        browser.expect(browser.path.startswith("/auth/login?rd="), "not sent to the login page")
        browser.expect(browser.driver.title == "Log in · Gatehouse", "the login page's title")
        browser.check("login")

        step("sign up, with a field error first")
        browser.click("a[href^='/auth/signup']")
        browser.expect(browser.path.startswith("/auth/signup?rd="), "the signup link lost rd")
        browser.check("signup")
        browser.fill("#email", EMAIL)
        browser.fill("#password", "short")
        browser.click("button[type=submit]")
        browser.expect(browser.find("#password-error").text.startswith("Password must be"), "no field error")
        browser.expect(browser.find("#email").get_attribute("value") == EMAIL, "the email was not kept")
        browser.expect(browser.find("#password").get_attribute("value") == "", "the password was kept")
        browser.check("signup-error")
        browser.fill("#password", PASSWORD)
        browser.click("button[type=submit]")

        step("land on the protected page with the identity")
        browser.expect(browser.path == "/app/dashboard?tab=1", "signup did not return to the page")
        echoed = json.loads(browser.text())
        headers = {name.lower(): value for name, value in echoed["headers"]}
        browser.go("/auth/me")
        me = json.loads(browser.text())
        browser.expect(headers.get("x-user-id") == me["id"], "the upstream did not get the identity")

        step("verify the email address from the mailed link")
        browser.go(mailed_link("/auth/email/verify", seen))
        browser.expect(browser.path == "/auth/email/verify", "the token stayed in the URL")
        browser.check("verify")
        browser.click("button[type=submit]")
        browser.expect(browser.path == "/auth/account?notice=email_verified", "verification did not land on the account")
        browser.expect("Your email address is verified." in browser.text() and "· verified" in browser.text(), "not verified")

        step("revoke another session from the account page")
        status, other = api("POST", "/auth/login", {"email": EMAIL, "password": PASSWORD})
        browser.expect(status == 200 and other, "the second device could not log in")
        browser.go("/auth/account")
        rows = browser.driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        browser.expect(len(rows) == 2, "two sessions are not listed")
        browser.check("account")
        browser.click("tbody tr form button")
        browser.expect(browser.path == "/auth/account?notice=session_revoked", "the revoke did not come back to the account")
        browser.expect(len(browser.driver.find_elements(By.CSS_SELECTOR, "tbody tr")) == 1, "the session is still listed")
        browser.expect(api("GET", "/auth/me", cookie=other)[0] == 401, "the revoked session still works")

        step("turn on TOTP with a computed code")
        browser.click("form[action='/auth/mfa/totp/setup'] button")
        browser.check("totp-setup")
        secret = browser.find("#secret").text
        browser.expect(browser.find(".qr svg") is not None, "no QR code")
        browser.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
        browser.click("form[action='/auth/mfa/totp/confirm'] button")
        browser.expect(browser.find("#code-error") is not None and browser.find("#secret").text == secret, "a wrong code did not show the same setup again")
        enrolled = int(time.time()) // 30
        browser.fill("#code", pyotp.TOTP(secret).now())
        browser.click("form[action='/auth/mfa/totp/confirm'] button")
        codes = [item.text for item in browser.driver.find_elements(By.CSS_SELECTOR, "#recovery-codes li")]
        browser.expect(len(codes) == 10, "ten recovery codes are not shown")
        browser.check("recovery-codes")

        step("log out, with the confirmation page")
        session = browser.driver.get_cookie("gatehouse_session")["value"]
        browser.go("/auth/logout")
        browser.check("logout")
        browser.click("button[type=submit]")
        browser.expect(browser.path == "/auth/login?notice=logged_out" and "You are logged out." in browser.text(), "logout did not land on the login page")
        browser.expect(api("GET", "/auth/me", cookie=session)[0] == 401, "the session outlived the logout")

        step("log in with the password and a TOTP code")
        browser.go("/app/dashboard")
        browser.fill("#email", EMAIL)
        browser.fill("#password", PASSWORD)
        browser.click("button[type=submit]")
        browser.expect(browser.driver.title.startswith("Two-factor login"), "no code step")
        browser.check("mfa")
        # A code is accepted once: the next one comes with the next 30-second step.
        while int(time.time()) // 30 <= enrolled:
            time.sleep(0.5)
        browser.fill("#code", pyotp.TOTP(secret).now())
        browser.click("#code ~ button")
        browser.expect(browser.path == "/app/dashboard", "the code step did not return to the page")

        step("forget the password, reset it from the mailed link, log in with a recovery code")
        browser.driver.delete_all_cookies()
        browser.go("/auth/password/forgot")
        browser.check("forgot")
        browser.fill("#email", EMAIL)
        browser.click("button[type=submit]")
        browser.expect(browser.path == "/auth/password/forgot?notice=reset_sent", "the forgot form did not confirm")
        browser.go(mailed_link("/auth/password/reset", seen))
        browser.expect(browser.path == "/auth/password/reset", "the token stayed in the URL")
        browser.check("reset")
        browser.fill("#new_password", NEW_PASSWORD)
        browser.click("button[type=submit]")
        browser.expect(browser.path == "/auth/login?notice=password_reset", "the reset did not land on the login page")
        browser.fill("#email", EMAIL)
        browser.fill("#password", NEW_PASSWORD)
        browser.click("button[type=submit]")
        browser.find("details summary").click()
        browser.fill("#recovery_code", codes[0])
        browser.click("#recovery_code ~ button")
        browser.expect(browser.path == "/", "the recovery code did not log in")

        step("errors are pages for a browser")
        browser.go("/auth/password/reset")
        browser.check("invalid-link")
        browser.go("/auth/no-such-page")
        browser.expect(browser.driver.title.startswith("Not found"), "no 404 page")
        browser.check("error-404")
        browser.go("/down/report")
        browser.expect(browser.driver.title.startswith("The app is not answering"), "no 502 page")
        browser.check("error-502")
    except Exception as error:
        print(f"failed: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        browser.driver.quit()
    print(json.dumps({"checked": checked}))


main()
