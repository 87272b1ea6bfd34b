/** `npm start`: one node with the configuration from the environment (src/config.ts). */
import { serveOrExit } from './serve.ts';

serveOrExit();
