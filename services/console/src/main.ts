import { runConsole } from './server.js';

await runConsole();
