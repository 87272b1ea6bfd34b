import t from 'tap';
import { PlaintextCache } from '../../src/storage/plaintext-cache.ts';

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

t.test('PlaintextCache keeps recently used versions within its byte budget', async (t) => {
  const cache = new PlaintextCache(800);
  cache.set('a', 'patient/1', bytes(100, 1));
  cache.set('b', 'patient/1', bytes(100, 2));
  cache.set('c', 'node', bytes(100, 3));
  t.equal(cache.bytes, 300);
  t.same(cache.get('a'), bytes(100, 1), 'a hit returns the stored bytes');
  for (let i = 0; i < 6; i++) cache.set(`x${i}`, 'node', bytes(100));
  t.equal(cache.bytes, 800, 'at the budget, not over it');
  t.equal(cache.get('b'), undefined, 'the least recently used went first');
  t.ok(cache.get('a'), 'the one read since was kept');
  t.ok(cache.get('c'));
});

t.test('PlaintextCache refuses a version larger than an eighth of its budget', async (t) => {
  const cache = new PlaintextCache(800);
  cache.set('small', 'node', bytes(100));
  cache.set('large', 'node', bytes(101));
  t.equal(cache.get('large'), undefined);
  t.ok(cache.get('small'));
  t.equal(cache.bytes, 100);
  const off = new PlaintextCache(0);
  off.set('a', 'node', bytes(1));
  t.equal(off.get('a'), undefined, 'a zero budget keeps nothing');
});

t.test('PlaintextCache keeps the first bytes stored under an address', async (t) => {
  const cache = new PlaintextCache(800);
  cache.set('a', 'node', bytes(10, 1));
  cache.set('a', 'node', bytes(10, 2));
  t.same(cache.get('a'), bytes(10, 1));
  t.equal(cache.bytes, 10);
});

t.test('forget drops every version under an erased key and nothing else', async (t) => {
  const cache = new PlaintextCache(8000);
  for (let i = 0; i < 50; i++) cache.set(`p1-${i}`, 'patient/1', bytes(10));
  for (let i = 0; i < 50; i++) cache.set(`p2-${i}`, 'patient/2', bytes(10));
  cache.forget('patient/1');
  t.equal(cache.bytes, 500);
  for (let i = 0; i < 50; i++) {
    t.equal(cache.get(`p1-${i}`), undefined);
    t.ok(cache.get(`p2-${i}`));
  }
});
