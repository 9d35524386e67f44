// Opens a dashboard link in headless Chromium (Debian's package, driven by playwright-core)
// and reports what the Control UI shows, from the page and from its screenshot.
//
//   node control_ui.mjs <profile-dir> <screenshot.png>   (the link on stdin: it holds the token)
//
// Chromium runs with a fresh profile in <profile-dir>, with the flags this machine needs
// (no sandbox as root, no GPU, no background networking); every request that is not for
// 127.0.0.1 is refused and listed. The page is watched until it has connected to the
// gateway over its WebSocket (the health pill reads "OK") or was refused (a "disconnected
// (...)" notice), then read:
//   health      the pill's text; statusDot its classes
//   disconnected  the text of any "disconnected (...)" notice
//   composer    the message box's placeholder and whether it is disabled
//   url         the address once the UI has read the link (it strips the token)
//   dotPixels   the mean colour of the status dot, read back from the saved screenshot
// and printed as one JSON object.
import fs from "node:fs";
import { chromium } from "playwright-core";

const [profile, screenshot] = process.argv.slice(2);
const link = fs.readFileSync(0, "utf8").trim();
const refused = [];

const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 720 },
  deviceScaleFactor: 1,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1" || url.protocol === "data:") return route.continue();
    refused.push(`${url.protocol}//${url.host}`);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(link);
  const pill = page.locator(".pill", { hasText: "Health" }).first();
  // Settled: the connection either completes (the pill reads OK) or is refused with a
  // notice; "Offline" alone is also what shows before the WebSocket has connected.
  const signedIn = pill.locator(".mono", { hasText: /^OK$/ }).waitFor({ timeout: 60000 });
  const refusedNotice = page
    .locator("text=/disconnected \\(/")
    .first()
    .waitFor({ timeout: 60000 });
  await Promise.any([signedIn, refusedNotice]);
  await page.waitForTimeout(500); // let the last render land before the screenshot
  const dot = pill.locator(".statusDot");
  const box = await dot.boundingBox();
  const composer = page.locator("textarea").first();
  const notices = await page.locator("text=/disconnected \\(/").allTextContents();
  const result = {
    health: (await pill.locator(".mono").textContent()).trim(),
    statusDot: await dot.getAttribute("class"),
    disconnected: notices.map((text) => text.trim()),
    composer: {
      placeholder: await composer.getAttribute("placeholder"),
      disabled: await composer.isDisabled(),
    },
    url: page.url(),
    refused: [...new Set(refused)],
  };
  await page.screenshot({ path: screenshot });

  // The dot's colour, from the screenshot file itself, decoded by Chromium in a blank page.
  const reader = await context.newPage();
  const png = fs.readFileSync(screenshot).toString("base64");
  result.dotPixels = await reader.evaluate(
    async ({ png, box }) => {
      const image = new Image();
      image.src = `data:image/png;base64,${png}`;
      await image.decode();
      const canvas = document.createElement("canvas");
      canvas.width = image.width;
      canvas.height = image.height;
      const context2d = canvas.getContext("2d");
      context2d.drawImage(image, 0, 0);
      // The middle half of the dot, clear of its anti-aliased rim.
      const x = Math.round(box.x + box.width / 4);
      const y = Math.round(box.y + box.height / 4);
      const w = Math.max(1, Math.round(box.width / 2));
      const h = Math.max(1, Math.round(box.height / 2));
      const data = context2d.getImageData(x, y, w, h).data;
      const sum = [0, 0, 0];
      for (let i = 0; i < data.length; i += 4) {
        sum[0] += data[i];
        sum[1] += data[i + 1];
        sum[2] += data[i + 2];
      }
      const count = data.length / 4;
      return { r: sum[0] / count, g: sum[1] / count, b: sum[2] / count, width: image.width };
    },
    { png, box },
  );
  console.log(JSON.stringify(result));
} finally {
  await context.close();
}
