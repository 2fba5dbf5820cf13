// Drives a real headless Chromium (Debian's) through the mashup page: it loads the page,
// signs in on the demo authentication module when the page sends it there, and prints
// the page's final result (JSON) once the page has one.
//
//   node tests/js/mashup.js <page URL>
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const [pageUrl] = process.argv.slice(2);

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error('page:', m.text()));
    await page.goto(pageUrl);
    // Either the page has a result already (refused, or signed in), or it is at the login.
    const at = await page.waitForFunction(() => {
      const r = document.getElementById('result');
      if (r && r.textContent) return 'result';
      if (document.querySelector('input[name=userId]')) return 'login';
      return false;
    }, { timeout: 20000 });
    if ((await at.jsonValue()) === 'login') {
      await page.type('input[name=userId]', 'jdoe');
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      await page.waitForFunction(() => {
        const r = document.getElementById('result');
        return r && r.textContent;
      }, { timeout: 20000 });
    }
    console.log(await page.$eval('#result', (e) => e.textContent));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
