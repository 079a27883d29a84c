// `npm run db:ferretdb`: makes sure the FerretDB binary used as the embedded/test database is available
// (on PATH or built into the cache folder), and prints its path. CI runs it before the tests.
import { loadConfig } from '../src/config/index.js';
import { ensureFerretDbBinary } from '../src/db/embedded.js';

const { config } = loadConfig();
const binary = await ensureFerretDbBinary(config.database.cache_dir, (message) => console.log(message));
console.log(`ferretdb: ${binary}`);
