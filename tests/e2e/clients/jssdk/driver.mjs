// A matrix-js-sdk driver for the Python tests (tests/e2e/clients/jssdk_driver.py).
//
// Reads one JSON command per line on stdin, answers one JSON line per command on stdout:
//   {"id": 1, "op": "client", "name": "alice", "baseUrl": ..., "userId": ..., "accessToken": ..., "deviceId": ...}
//   {"id": 2, "op": "start", "name": "alice", "timeoutMs": 30000}   -> waits for PREPARED
//   {"id": 3, "op": "call", "name": "alice", "method": "sendTextMessage", "args": [...]}
//   {"id": 4, "op": "room", "name": "alice", "roomId": ...}          -> what the SDK shows
//   {"id": 5, "op": "waitFor", "name": "alice", "roomId": ..., "eventType": ..., "timeoutMs": ...}
//   {"id": 6, "op": "warnings"}                                     -> every warning logged
// Answers: {"id": 1, "ok": true, "result": ...} or {"id": 1, "ok": false, "error": "..."}.
//
// Every warning or error the SDK logs is recorded with the client it came from, so a test can
// treat each complaint about a server response as a bug.
import readline from "node:readline";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

const warnings = [];
const clients = new Map();

function record(level, args) {
  const text = args
    .map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : typeof a === "string" ? a : safeJson(a)))
    .join(" ");
  warnings.push({ level, text });
}

function safeJson(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// The SDK logs through loglevel-style loggers; capture warn and error from all of them.
for (const level of ["warn", "error"]) {
  const original = logger[level].bind(logger);
  logger[level] = (...args) => {
    record(level, args);
    if (process.env.JSSDK_DRIVER_VERBOSE) original(...args);
  };
}
// Child loggers (logger.getChild(...)) share the method factory; patch it too.
const factory = logger.methodFactory;
logger.methodFactory = (methodName, logLevel, loggerName) => {
  const raw = factory(methodName, logLevel, loggerName);
  if (methodName === "warn" || methodName === "error") {
    return (...args) => record(methodName, [`[${String(loggerName)}]`, ...args]);
  }
  return process.env.JSSDK_DRIVER_VERBOSE ? raw : () => {};
};
logger.setLevel(logger.getLevel(), false);
for (const level of ["info", "debug", "trace", "log"]) {
  if (!process.env.JSSDK_DRIVER_VERBOSE) logger[level] = () => {};
}

function plainEvent(ev) {
  return {
    event_id: ev.getId(),
    type: ev.getType(),
    sender: ev.getSender(),
    content: ev.getContent(),
    state_key: ev.getStateKey(),
    thread_id: ev.threadRootId ?? null,
    is_thread_root: ev.isThreadRoot ?? false,
    replaced_by: ev.replacingEventId() ?? null,
    redacted: ev.isRedacted(),
  };
}

function roomView(client, roomId) {
  const room = client.getRoom(roomId);
  if (!room) return null;
  const timeline = room.getLiveTimeline().getEvents().map(plainEvent);
  const threads = room.getThreads().map((t) => ({
    id: t.id,
    length: t.length,
    replies: t.timeline.map((e) => e.getId()),
  }));
  return {
    room_id: roomId,
    name: room.name,
    membership: room.getMyMembership(),
    timeline,
    threads,
    unread: {
      total: room.getUnreadNotificationCount(sdk.NotificationCountType.Total),
      highlight: room.getUnreadNotificationCount(sdk.NotificationCountType.Highlight),
    },
    tombstone_replacement: room.currentState.getStateEvents("m.room.tombstone", "")?.getContent()?.replacement_room ?? null,
    is_dm_invite: room.getDMInviter ? room.getDMInviter() ?? null : null,
  };
}

function waitForPrepared(client, timeoutMs) {
  return new Promise((resolve, reject) => {
    const states = [];
    const timer = setTimeout(
      () => reject(new Error(`no PREPARED within ${timeoutMs} ms; sync states: ${states.join(",")}`)),
      timeoutMs,
    );
    client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
      states.push(state);
      if (state === "ERROR" && data?.error) record("error", [`sync error: ${data.error.message ?? data.error}`]);
      if (state === "PREPARED") {
        clearTimeout(timer);
        resolve([...states]);
      }
    });
  });
}

async function waitFor(client, roomId, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = roomView(client, roomId);
    if (view && predicate(view)) return view;
    if (Date.now() > deadline) throw new Error(`timed out waiting in ${roomId}: ${safeJson(view)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function jsonable(value) {
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
  } catch {
    return String(value);
  }
}

async function handle(cmd) {
  const client = cmd.name ? clients.get(cmd.name) : undefined;
  switch (cmd.op) {
    case "client": {
      const c = sdk.createClient({
        baseUrl: cmd.baseUrl,
        userId: cmd.userId,
        accessToken: cmd.accessToken,
        deviceId: cmd.deviceId,
        timelineSupport: true,
      });
      clients.set(cmd.name, c);
      return true;
    }
    case "start": {
      const prepared = waitForPrepared(client, cmd.timeoutMs ?? 30000);
      // The options Element Web starts the SDK with: threads on, local echoes detached.
      await client.startClient({
        initialSyncLimit: 20,
        threadSupport: true,
        pendingEventOrdering: "detached",
        ...(cmd.options ?? {}),
      });
      return await prepared;
    }
    case "stop":
      client.stopClient();
      return true;
    case "call": {
      const result = await client[cmd.method](...(cmd.args ?? []));
      return jsonable(result);
    }
    case "room":
      return roomView(client, cmd.roomId);
    case "waitFor": {
      const view = await waitFor(
        client,
        cmd.roomId,
        (v) =>
          (cmd.membership === undefined || v.membership === cmd.membership) &&
          (cmd.eventId === undefined || v.timeline.some((e) => e.event_id === cmd.eventId)) &&
          (cmd.body === undefined || v.timeline.some((e) => e.content?.body === cmd.body)) &&
          (cmd.unreadTotal === undefined || v.unread.total === cmd.unreadTotal) &&
          (cmd.threads === undefined || v.threads.length >= cmd.threads) &&
          (cmd.tombstone === undefined || v.tombstone_replacement !== null),
        cmd.timeoutMs ?? 20000,
      );
      return view;
    }
    case "warnings":
      return warnings;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad command: ${e}` }) + "\n");
    return;
  }
  try {
    const result = await handle(cmd);
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, result: jsonable(result) }) + "\n");
  } catch (e) {
    const detail = e?.data ? ` ${safeJson(e.data)}` : "";
    process.stdout.write(
      JSON.stringify({ id: cmd.id, ok: false, error: `${e?.name ?? "Error"}: ${e?.message ?? e}${detail}` }) + "\n",
    );
  }
});
rl.on("close", () => {
  for (const c of clients.values()) c.stopClient();
  process.exit(0);
});
