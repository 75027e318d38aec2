import { runMain } from '@orderflow/kit';
import { orderService } from './definition.js';

await runMain(orderService());
