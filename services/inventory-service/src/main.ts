import '@orderflow/kit/otel'; // first: tracing must start before pg and http are loaded
import { runMain } from '@orderflow/kit';
import { inventoryService } from './definition.js';

await runMain(inventoryService());
