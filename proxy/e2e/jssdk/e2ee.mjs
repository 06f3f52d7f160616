// e2ee.mjs — a real Matrix client (matrix-js-sdk with its Rust-crypto WASM) exchanging end-to-end encrypted
// messages between two users on two homeservers, each talking only to its own timstack proxy.
//
// Usage: node e2ee.mjs CONFIG.json   (or "-" to read the config from stdin)
//
// Config:
//   {"alice": {"baseUrl": "http://127.0.0.1:1234", "userId": "@a:hs1.tim.test", "password": "..."},
//    "bob":   {"baseUrl": "http://127.0.0.1:5678", "userId": "@b:hs2.tim.test", "password": "..."},
//    "aliceText": "...", "bobText": "...", "timeoutMs": 120000}
//
// Alice creates an encrypted private room and invites Bob, Bob joins, Alice sends aliceText, Bob decrypts it,
// Bob replies with bobText, Alice decrypts that. On success one JSON line goes to stdout (room, event IDs,
// device IDs, decrypted bodies, timings) and the exit status is 0; on failure the reason goes to stderr and the
// status is 1. The SDK's own logging goes to stderr so that stdout stays one parseable line.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

// loglevel (the SDK's logger) writes through console.log/info/debug, which would land on stdout.
for (const k of ["log", "info", "debug", "trace"]) {
	console[k] = (...args) => console.error(...args);
}

// scripts/node.sh installs the packages into a cache outside the repository and the Go test passes that
// node_modules as TIMSTACK_NODE_MODULES; without it, ordinary resolution applies (npm ci in this folder).
const modules = process.env.TIMSTACK_NODE_MODULES;
const resolveFrom = modules ? createRequire(join(dirname(modules), "resolve-from-here.js")) : null;
const load = (spec) => import(resolveFrom ? pathToFileURL(resolveFrom.resolve(spec)).href : spec);

const sdk = await load("matrix-js-sdk");
const { logger } = await load("matrix-js-sdk/lib/logger.js");
// not re-exported by the package's index in 37.x
const { AllDevicesIsolationMode } = await load("matrix-js-sdk/lib/crypto-api/index.js");

const started = Date.now();
const marks = {};
const mark = (name) => {
	marks[name] = Date.now() - started;
};

function fail(reason) {
	process.stderr.write(`e2ee: FAIL: ${reason}\n`);
	process.exit(1);
}

function readConfig() {
	const arg = process.argv[2];
	if (!arg) {
		fail("usage: node e2ee.mjs CONFIG.json|-");
	}
	let cfg;
	try {
		cfg = JSON.parse(readFileSync(arg === "-" ? 0 : arg, "utf8"));
	} catch (e) {
		fail(`config: ${e.message}`);
	}
	for (const who of ["alice", "bob"]) {
		const u = cfg[who];
		if (!u || typeof u.baseUrl !== "string" || typeof u.userId !== "string" || typeof u.password !== "string") {
			fail(`config: ${who} needs baseUrl, userId and password`);
		}
	}
	cfg.aliceText ??= `hello from alice ${Math.random().toString(36).slice(2)}`;
	cfg.bobText ??= `hello from bob ${Math.random().toString(36).slice(2)}`;
	cfg.timeoutMs ??= 120000;
	cfg.logLevel ??= "warn";
	return cfg;
}

const cfg = readConfig();
logger.setLevel(cfg.logLevel);

// The hard limit: whatever hangs (federation, key sharing), the process ends with a reason.
let stage = "start";
setTimeout(() => fail(`timed out after ${cfg.timeoutMs} ms during: ${stage}`), cfg.timeoutMs);

// waitFor polls cond (sync or async) until it returns a truthy value.
async function waitFor(what, cond, intervalMs = 100) {
	stage = what;
	for (;;) {
		const v = await cond();
		if (v) {
			return v;
		}
		await new Promise((r) => setTimeout(r, intervalMs));
	}
}

function localpart(userId) {
	const m = /^@([^:]+):/.exec(userId);
	if (!m) {
		fail(`not a user ID: ${userId}`);
	}
	return m[1];
}

// login performs m.login.password through the proxy and returns a started, crypto-enabled client.
async function login(name, u) {
	stage = `${name}: login`;
	const anon = sdk.createClient({ baseUrl: u.baseUrl });
	let resp;
	try {
		resp = await anon.loginRequest({
			type: "m.login.password",
			identifier: { type: "m.id.user", user: localpart(u.userId) },
			password: u.password,
			initial_device_display_name: `timstack e2e jssdk (${name})`,
		});
	} catch (e) {
		fail(`${name}: login: ${e.message}`);
	}
	if (resp.user_id !== u.userId) {
		fail(`${name}: logged in as ${resp.user_id}, want ${u.userId}`);
	}
	anon.stopClient();
	const client = sdk.createClient({
		baseUrl: u.baseUrl,
		accessToken: resp.access_token,
		userId: resp.user_id,
		deviceId: resp.device_id,
	});
	stage = `${name}: initRustCrypto`;
	// In-memory crypto store: Node has no IndexedDB, and a test device lives only as long as this process.
	await client.initRustCrypto({ useIndexedDB: false });
	const crypto = client.getCrypto();
	if (!crypto) {
		fail(`${name}: no crypto after initRustCrypto`);
	}
	// Share room keys with every device of the room's members, verified or not (TOFU, as a fresh test device
	// has no cross-signing to check against); withholding keys from unverified devices would prove nothing here.
	crypto.globalBlacklistUnverifiedDevices = false;
	crypto.setDeviceIsolationMode(new AllDevicesIsolationMode(false));
	const prepared = new Promise((resolve, reject) => {
		client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
			if (state === "PREPARED" || state === "SYNCING") {
				resolve();
			} else if (state === "ERROR") {
				reject(new Error(`sync error: ${data?.error?.message ?? "unknown"}`));
			}
		});
	});
	stage = `${name}: first sync`;
	await client.startClient({ initialSyncLimit: 20, lazyLoadMembers: false });
	try {
		await prepared;
	} catch (e) {
		fail(`${name}: ${e.message}`);
	}
	return { client, deviceId: resp.device_id, userId: resp.user_id };
}

// waitDecrypted waits until the client's copy of eventId in roomId is decrypted and returns it.
async function waitDecrypted(name, client, roomId, eventId) {
	return waitFor(`${name}: receive and decrypt ${eventId}`, async () => {
		const room = client.getRoom(roomId);
		const ev = room?.findEventById(eventId);
		if (!ev) {
			return null;
		}
		await client.decryptEventIfNeeded(ev);
		if (ev.isBeingDecrypted() || ev.isDecryptionFailure()) {
			// Rust crypto retries by itself once the room key arrives over to-device.
			return null;
		}
		return ev;
	}, 200);
}

function describe(ev) {
	return {
		eventId: ev.getId(),
		sender: ev.getSender(),
		wireType: ev.getWireType(),
		type: ev.getType(),
		encrypted: ev.isEncrypted(),
		body: ev.getContent()?.body,
		algorithm: ev.getWireContent()?.algorithm,
	};
}

const alice = await login("alice", cfg.alice);
const bob = await login("bob", cfg.bob);
mark("loggedIn");

stage = "alice: create room";
const { room_id: roomId } = await alice.client
	.createRoom({
		preset: sdk.Preset.PrivateChat,
		invite: [bob.userId],
		initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
	})
	.catch((e) => fail(`alice: create room: ${e.message}`));
mark("roomCreated");

await waitFor("bob: wait for the invite", () => bob.client.getRoom(roomId)?.getMyMembership() === "invite");
await bob.client.joinRoom(roomId).catch((e) => fail(`bob: join: ${e.message}`));
await waitFor(
	"alice: see bob join",
	() => alice.client.getRoom(roomId)?.getMember(bob.userId)?.membership === "join",
);
await waitFor("both: room is encrypted", async () => {
	return (await alice.client.getCrypto().isEncryptionEnabledInRoom(roomId)) &&
		(await bob.client.getCrypto().isEncryptionEnabledInRoom(roomId));
});
mark("joined");

stage = "alice: send";
const { event_id: aliceEventId } = await alice.client
	.sendMessage(roomId, { msgtype: "m.text", body: cfg.aliceText })
	.catch((e) => fail(`alice: send: ${e.message}`));
const atBob = await waitDecrypted("bob", bob.client, roomId, aliceEventId);
mark("bobDecrypted");

stage = "bob: send";
const { event_id: bobEventId } = await bob.client
	.sendMessage(roomId, { msgtype: "m.text", body: cfg.bobText })
	.catch((e) => fail(`bob: send: ${e.message}`));
const atAlice = await waitDecrypted("alice", alice.client, roomId, bobEventId);
mark("aliceDecrypted");

const result = {
	ok: true,
	sdk: "matrix-js-sdk",
	crypto: alice.client.getCrypto().getVersion(),
	roomId,
	alice: { userId: alice.userId, deviceId: alice.deviceId },
	bob: { userId: bob.userId, deviceId: bob.deviceId },
	atBob: describe(atBob),
	atAlice: describe(atAlice),
	ms: marks,
};
for (const [name, ev, want, sender] of [
	["bob", atBob, cfg.aliceText, alice.userId],
	["alice", atAlice, cfg.bobText, bob.userId],
]) {
	const d = describe(ev);
	if (!d.encrypted || d.wireType !== "m.room.encrypted" || d.algorithm !== "m.megolm.v1.aes-sha2") {
		fail(`${name}: event ${d.eventId} was not megolm-encrypted on the wire: ${JSON.stringify(d)}`);
	}
	if (d.type !== "m.room.message" || d.body !== want || d.sender !== sender) {
		fail(`${name}: decrypted ${JSON.stringify(d)}, want an m.room.message from ${sender} with the sent body`);
	}
}
alice.client.stopClient();
bob.client.stopClient();
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
