/**
 * A worker thread of the parallel full verification (verify.ts): opens the same LevelDB location (classic-level
 * `multithreading`) and checks the chunks it is handed (verify-chunk.ts) until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from '../storage/db.ts';
import { checkChunk, type ChunkResult, type ChunkTask } from './verify-chunk.ts';

const db = await openDatabase((workerData as { location: string }).location, { multithreading: true });

parentPort!.on('message', (task: ChunkTask | null) => {
  if (task === null) {
    void db.close().then(() => parentPort!.close());
    return;
  }
  checkChunk(db, task).then(
    (result) => parentPort!.postMessage(result),
    (error: unknown) => parentPort!.postMessage({ id: task.id, ok: false, reason: (error as Error).message } satisfies ChunkResult),
  );
});
parentPort!.postMessage('ready');
