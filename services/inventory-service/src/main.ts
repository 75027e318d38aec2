import { runMain } from '@orderflow/kit';
import { inventoryService } from './definition.js';

await runMain(inventoryService());
