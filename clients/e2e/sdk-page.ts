// The page the SDK-level browser tests load: the SDK as `window.tidesyncSdk`,
// served by the real binary (TIDESYNC_DEMO_DIR) so it is same-origin with the API.
import * as sdk from '../js/src/index.js';

(window as unknown as { tidesyncSdk: typeof sdk }).tidesyncSdk = sdk;
document.getElementById('app')!.textContent = 'tidesync SDK test page';
