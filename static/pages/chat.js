import { startRoomPage } from "./room-page.js";

startRoomPage({ layout: "duo" });
